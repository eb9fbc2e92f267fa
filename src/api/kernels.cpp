// The public entries of the three stages: validate, plan, run.
#include <cstring>
#include <optional>

#include "api/validate.hpp"
#include "kernels/tile_kernels.hpp"
#include "plan/attention_plan.hpp"
#include "plan/run_plan.hpp"
#include "simdattn/kernels.hpp"

namespace simdattn {

void qk_scores(AnyConstTensorView q, AnyConstTensorView k, TensorView scores, float scale,
               int num_threads, std::optional<ConstTensorView> k_scale) {
  detail::validate_qk_scores("simdattn::qk_scores", q, k, scores, scale, num_threads, k_scale);
  if (q.shape[0] == 0 || q.shape[1] == 0 || q.shape[2] == 0 || k.shape[2] == 0) return;
  const detail::AttentionPlan plan = detail::make_qk_scores_plan(q, k, scores, scale, num_threads, k_scale);
  detail::run_plan(plan, detail::Stage::qk_scores);
}

void weights_v(ConstTensorView weights, AnyConstTensorView v, AnyTensorView out, int num_threads,
               std::optional<ConstTensorView> v_scale) {
  detail::validate_weights_v("simdattn::weights_v", weights, v, out, num_threads, v_scale);
  if (weights.shape[0] == 0 || weights.shape[1] == 0 || weights.shape[2] == 0 || v.shape[3] == 0) return;
  const detail::AttentionPlan plan = detail::make_weights_v_plan(weights, v, out, num_threads, v_scale);
  if (plan.sk == 0) {
    for (int64_t b = 0; b < plan.batch; ++b)
      for (int64_t h = 0; h < plan.q_heads; ++h)
        for (int64_t i = 0; i < plan.sq; ++i) {
          // +0 has all bits clear in every output dtype.
          std::memset(out.row(b, h, i), 0, static_cast<size_t>(plan.value_dim * dtype_size(out.dtype)));
        }
    return;
  }
  detail::run_plan(plan, detail::Stage::weights_v);
}

void softmax_rows(TensorView scores, int num_threads) { softmax_rows(scores, nullptr, num_threads); }

void softmax_rows(TensorView scores, const float* sinks, int num_threads) {
  detail::validate_softmax_rows("simdattn::softmax_rows", scores, num_threads, sinks);
  const int64_t heads = scores.shape[1], rows_per_head = scores.shape[2];
  // Checked before the product, which could overflow for an empty view of huge dimensions.
  if (scores.shape[0] == 0 || heads == 0 || rows_per_head == 0 || scores.shape[3] == 0) return;
  const int64_t rows = scores.shape[0] * heads * rows_per_head;
  const detail::Isa isa = detail::isa_for_this_call();
  const int threads = detail::threads_for_call(num_threads, rows);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t b = r / (heads * rows_per_head), h = r / rows_per_head % heads, i = r % rows_per_head;
    detail::SoftmaxRow softmax;
    if (sinks != nullptr) softmax.sink = sinks[h];
    detail::run_for_isa(isa, softmax, scores.row(b, h, i), scores.shape[3]);
  }
}

}  // namespace simdattn
