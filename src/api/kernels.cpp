// The public entries of the three stages: validate, plan, run.
#include <cstring>
#include <optional>

#include "api/validate.hpp"
#include "kernels/tile_kernels.hpp"
#include "plan/attention_plan.hpp"
#include "plan/run_plan.hpp"
#include "simdattn/kernels.hpp"

namespace simdattn {
namespace {

// A plan for a stage: the stage's tensors in the attention plan's fields, no options.
detail::AttentionPlan stage_plan(AnyConstTensorView q, AnyConstTensorView k, AnyConstTensorView v,
                                 AnyTensorView out, int num_threads,
                                 std::optional<ConstTensorView> k_scale,
                                 std::optional<ConstTensorView> v_scale) {
  AttentionOptions options;
  options.num_threads = num_threads;
  options.k_scale = k_scale;
  options.v_scale = v_scale;
  options.algorithm = Algorithm::composed;  // one pass over all keys, never split
  return detail::make_attention_plan(q, k, v, out, options);
}

}  // namespace

void qk_scores(AnyConstTensorView q, AnyConstTensorView k, TensorView scores, float scale,
               int num_threads, std::optional<ConstTensorView> k_scale) {
  detail::validate_qk_scores("simdattn::qk_scores", q, k, scores, scale, num_threads, k_scale);
  if (q.shape[0] == 0 || q.shape[1] == 0 || q.shape[2] == 0 || k.shape[2] == 0) return;
  // k stands in for v: the plan only reads v's head_dim, and nothing reads v here.
  detail::AttentionPlan plan = stage_plan(q, k, k, scores, num_threads, k_scale, k_scale);
  plan.scale = scale;
  plan.weights = scores;
  detail::run_plan(plan, detail::Stage::qk_scores);
}

void weights_v(ConstTensorView weights, AnyConstTensorView v, AnyTensorView out, int num_threads,
               std::optional<ConstTensorView> v_scale) {
  detail::validate_weights_v("simdattn::weights_v", weights, v, out, num_threads, v_scale);
  if (weights.shape[0] == 0 || weights.shape[1] == 0 || weights.shape[2] == 0 || v.shape[3] == 0) return;
  // The plan's queries are the weights rows: Hq, Sq and the group come from them, Sk from v.
  ConstTensorView shape_of_queries = weights;
  shape_of_queries.shape[3] = 0;
  detail::AttentionPlan plan = stage_plan(shape_of_queries, v, v, out, num_threads, v_scale, v_scale);
  plan.probabilities = weights;
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

void softmax_rows(TensorView scores, int num_threads) {
  detail::validate_softmax_rows("simdattn::softmax_rows", scores, num_threads);
  const int64_t heads = scores.shape[1], rows_per_head = scores.shape[2];
  // Checked before the product, which could overflow for an empty view of huge dimensions.
  if (scores.shape[0] == 0 || heads == 0 || rows_per_head == 0 || scores.shape[3] == 0) return;
  const int64_t rows = scores.shape[0] * heads * rows_per_head;
  const detail::Isa isa = detail::isa_for_this_call();
  const int threads = detail::threads_for_call(num_threads, rows);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t b = r / (heads * rows_per_head), h = r / rows_per_head % heads, i = r % rows_per_head;
    detail::run_for_isa(isa, detail::SoftmaxRow{}, scores.row(b, h, i), scores.shape[3]);
  }
}

}  // namespace simdattn
