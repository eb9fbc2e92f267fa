// Which keys a query position sees: the one place causal, window and kv_lengths become a range.
#pragma once

#include <algorithm>
#include <cstdint>

#include "plan/attention_plan.hpp"

namespace simdattn::detail {

struct KeyRange {
  int64_t begin, end;  // [begin, end); empty when begin >= end
  bool empty() const { return begin >= end; }
};

inline int64_t kv_length(const AttentionPlan& plan, int64_t batch) {
  return plan.kv_lengths != nullptr ? plan.kv_lengths[batch] : plan.sk;
}

// off aligns causal, window and ALiBi: 0 for top-left, kv length - Sq otherwise (bottom-right).
inline int64_t diagonal_offset(const AttentionPlan& plan, int64_t batch) {
  return plan.causal == Causal::top_left ? 0 : kv_length(plan, batch) - plan.sq;
}

// The keys query position i of batch b may see, before masks and biases.
inline KeyRange visible_keys(const AttentionPlan& plan, int64_t batch, int64_t i) {
  const int64_t diagonal = i + diagonal_offset(plan, batch);
  KeyRange range{0, kv_length(plan, batch)};
  if (plan.causal != Causal::none) range.end = std::min(range.end, diagonal + 1);
  if (plan.window_left >= 0) range.begin = std::max(range.begin, diagonal - plan.window_left);
  if (plan.window_right >= 0) range.end = std::min(range.end, diagonal + plan.window_right + 1);
  return range;
}

}  // namespace simdattn::detail
