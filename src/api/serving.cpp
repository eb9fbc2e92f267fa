// The public entries of attention_varlen() and attention_paged(): validate, describe where each
// sequence lies (SequenceTable), plan all sequences' work items together, run.
#include <optional>
#include <utility>

#include "api/validate.hpp"
#include "plan/attention_plan.hpp"
#include "plan/run_plan.hpp"
#include "simdattn/serving.hpp"

namespace simdattn {
namespace {

// The view a packed batch's plan reads for a packed [1, H, total, D] tensor: every batch entry
// is the whole tensor (batch stride 0), and each sequence's positions are addressed absolutely.
template <class View>
View every_batch(View view, int64_t batch) {
  view.shape[0] = batch;
  view.strides[0] = 0;
  return view;
}
template <class View>
std::optional<View> every_batch(const std::optional<View>& view, int64_t batch) {
  if (!view.has_value()) return std::nullopt;
  return every_batch(*view, batch);
}

std::vector<int64_t> widened(const int32_t* values, int64_t count) {
  return std::vector<int64_t>(values, values + count);
}

// Plans and runs a validated packed batch whose k and v are as the plan reads them.
void run_batch(AnyConstTensorView q, AnyConstTensorView k, AnyConstTensorView v, AnyTensorView out,
               int64_t batch, AttentionOptions options, detail::SequenceTable sequences,
               int64_t max_keys) {
  if (q.shape[1] == 0 || q.shape[2] == 0) return;  // no row to write
  options.lse = every_batch(options.lse, batch);
  const detail::AttentionPlan plan =
      detail::make_batch_plan(every_batch(q, batch), k, v, every_batch(out, batch), options,
                              std::move(sequences), max_keys);
  detail::run_plan(plan, detail::Stage::attention);
}

}  // namespace

void attention_varlen(AnyConstTensorView q, AnyConstTensorView k, AnyConstTensorView v,
                      AnyTensorView out, const int32_t* cu_seqlens_q, const int32_t* cu_seqlens_k,
                      int64_t batch, const AttentionOptions& options) {
  const int64_t max_keys = detail::validate_attention_varlen("simdattn::attention_varlen", q, k, v, out,
                                                             cu_seqlens_q, cu_seqlens_k, batch, options);
  detail::SequenceTable sequences;
  sequences.query_starts = widened(cu_seqlens_q, batch + 1);
  sequences.key_starts = widened(cu_seqlens_k, batch);
  sequences.key_lengths.resize(static_cast<size_t>(batch));
  for (int64_t b = 0; b < batch; ++b) sequences.key_lengths[b] = int64_t{cu_seqlens_k[b + 1]} - cu_seqlens_k[b];
  AttentionOptions batch_options = options;
  batch_options.k_scale = every_batch(options.k_scale, batch);
  batch_options.v_scale = every_batch(options.v_scale, batch);
  run_batch(q, every_batch(k, batch), every_batch(v, batch), out, batch, std::move(batch_options),
            std::move(sequences), max_keys);
}

void attention_paged(AnyConstTensorView q, const PagedCache& cache, AnyTensorView out,
                     const int32_t* cu_seqlens_q, int64_t batch, const AttentionOptions& options) {
  const int64_t max_keys = detail::validate_attention_paged("simdattn::attention_paged", q, cache, out,
                                                            cu_seqlens_q, batch, options);
  detail::SequenceTable sequences;
  sequences.query_starts = widened(cu_seqlens_q, batch + 1);
  sequences.key_lengths = widened(cache.seq_lens, batch);
  sequences.block_table = cache.block_table;
  sequences.table_stride = cache.blocks_per_sequence;
  sequences.page_rows = cache.k_pages.shape[2];
  AttentionOptions batch_options = options;
  batch_options.k_scale = cache.k_scale_pages;
  batch_options.v_scale = cache.v_scale_pages;
  run_batch(q, cache.k_pages, cache.v_pages, out, batch, std::move(batch_options), std::move(sequences),
            max_keys);
}

}  // namespace simdattn
