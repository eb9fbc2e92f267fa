// Which keys a query position sees: the one place causal, window and kv_lengths become a range.
// The kernels clip each column to it; the plan uses it to drop fully masked tiles and to order
// causal jobs.
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/tile_problem.hpp"

namespace simdattn::detail {

struct KeyRange {
  int64_t begin, end;  // [begin, end); empty when begin >= end
  bool empty() const { return begin >= end; }
};

// The keys of batch b's sequence, counted from its first (key_offset + Sk when not given: the
// shard, or the whole call, ends the sequence).
inline int64_t sequence_keys(const TileProblem& problem, int64_t batch) {
  return problem.kv_lengths != nullptr ? problem.kv_lengths[batch] : problem.key_offset + problem.sk;
}

// The rows of k that exist for batch b: [0, kv_length), the sequence's keys within this shard.
inline int64_t kv_length(const TileProblem& problem, int64_t batch) {
  return std::clamp<int64_t>(sequence_keys(problem, batch) - problem.key_offset, 0, problem.sk);
}

// The first query position of batch b, and how many it has (a packed batch's own length).
inline int64_t first_query(const TileProblem& problem, int64_t batch) {
  return problem.query_starts != nullptr ? problem.query_starts[batch] : 0;
}
inline int64_t query_count(const TileProblem& problem, int64_t batch) {
  return problem.query_starts != nullptr
             ? problem.query_starts[batch + 1] - problem.query_starts[batch]
             : problem.sq;
}

// off aligns causal, window and ALiBi: 0 for top-left, kv length - Sq otherwise (bottom-right),
// both measured from the batch's first query position (nonzero only in a packed batch), in rows
// of k (a shard's sequence positions less its key_offset, plus its diagonal_shift).
inline int64_t diagonal_offset(const TileProblem& problem, int64_t batch) {
  const int64_t aligned = problem.causal == Causal::top_left
                              ? 0
                              : sequence_keys(problem, batch) - query_count(problem, batch);
  return aligned + problem.diagonal_shift - problem.key_offset - first_query(problem, batch);
}

// The keys query position i of batch b sees within its window (causal, window, kv_lengths),
// before masks, biases and sink tokens.
inline KeyRange window_keys(const TileProblem& problem, int64_t batch, int64_t i) {
  const int64_t diagonal = i + diagonal_offset(problem, batch);
  KeyRange range{0, kv_length(problem, batch)};
  if (problem.causal != Causal::none) range.end = std::min(range.end, diagonal + 1);
  if (problem.window_left >= 0) range.begin = std::max(range.begin, diagonal - problem.window_left);
  if (problem.window_right >= 0) range.end = std::min(range.end, diagonal + problem.window_right + 1);
  return range;
}

// The keys query position i of batch b may see, before masks and biases: its window, and with
// sink tokens the keys [0, sink_tokens) up to the window's right end as well. The two need not
// touch; this is their hull, and sink_token_gap() the keys between them.
inline KeyRange visible_keys(const TileProblem& problem, int64_t batch, int64_t i) {
  KeyRange range = window_keys(problem, batch, i);
  if (problem.sink_tokens > 0) {
    const int64_t sink_end = std::min(problem.sink_tokens, range.end);
    if (sink_end > 0) range = {0, range.empty() ? sink_end : range.end};
  }
  return range;
}

// The keys inside visible_keys() that position i does not see: after the sink tokens, before its
// window's left edge. Empty when there is no such gap.
inline KeyRange sink_token_gap(const TileProblem& problem, int64_t batch, int64_t i) {
  if (problem.sink_tokens <= 0) return {0, 0};
  const KeyRange window = window_keys(problem, batch, i);
  const int64_t sink_end = std::min(problem.sink_tokens, window.end);
  if (sink_end <= 0 || window.empty() || sink_end >= window.begin) return {0, 0};
  return {sink_end, window.begin};
}

}  // namespace simdattn::detail
