// The public entry of attention(): validate, plan, run.
#include <cstring>
#include <limits>

#include "api/validate.hpp"
#include "plan/attention_plan.hpp"
#include "plan/run_plan.hpp"
#include "simdattn/attention.hpp"

namespace simdattn {
namespace {

// Sk = 0: nothing to attend to, so every row is zeros and every lse -inf (no kernel runs).
void write_empty_attention(const detail::AttentionPlan& plan) {
  for (int64_t b = 0; b < plan.batch; ++b) {
    for (int64_t h = 0; h < plan.q_heads; ++h) {
      for (int64_t i = 0; i < plan.sq; ++i) {
        // +0 has all bits clear in every output dtype.
        std::memset(plan.out.row(b, h, i), 0, static_cast<size_t>(plan.value_dim * dtype_size(plan.out.dtype)));
        // A row with no key: its sink alone (AttentionOptions::sinks), or none.
        if (plan.has_lse) *plan.lse.row(b, h, i) = plan.sinks != nullptr ? plan.sinks[h] : -std::numeric_limits<float>::infinity();
      }
    }
  }
}

}  // namespace

void attention(AnyConstTensorView q, AnyConstTensorView k, AnyConstTensorView v, AnyTensorView out,
               const AttentionOptions& options) {
  detail::validate_attention("simdattn::attention", q, k, v, out, options);
  if (q.shape[0] == 0 || q.shape[1] == 0 || q.shape[2] == 0) return;  // no row to write
  const detail::AttentionPlan plan = detail::make_attention_plan(q, k, v, out, options);
  if (plan.sk == 0) {
    write_empty_attention(plan);
    return;
  }
  detail::run_plan(plan, detail::Stage::attention);
}

}  // namespace simdattn
