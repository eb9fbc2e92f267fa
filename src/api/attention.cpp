// The public entry of attention(): validate, plan, run.
#include "api/validate.hpp"
#include "plan/attention_plan.hpp"
#include "plan/run_plan.hpp"
#include "simdattn/attention.hpp"

namespace simdattn {
void attention(AnyConstTensorView q, AnyConstTensorView k, AnyConstTensorView v, AnyTensorView out,
               const AttentionOptions& options) {
  detail::validate_attention("simdattn::attention", q, k, v, out, options);
  if (q.shape[0] == 0 || q.shape[1] == 0 || q.shape[2] == 0) return;  // no row to write
  detail::run_plan(detail::make_attention_plan(q, k, v, out, options), detail::Stage::attention);
}

}  // namespace simdattn
