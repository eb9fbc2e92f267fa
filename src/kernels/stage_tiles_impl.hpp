// The three stages as separate calls on the caller's tensors: qk_scores and weights_v per work
// item (the same micro-kernel and key-major tiles as attention), softmax_rows per row.
#pragma once

#include "kernels/tile_common_impl.hpp"

namespace simdattn::detail {

// scores[b, head(c), position(c), j] = scale · q·k_j for every key, one key block at a time.
template <class Arch, int Vectors>
inline void run_qk_scores_tile(const AttentionPlan& plan, const TileJob& job, TileScratch& scratch) {
  constexpr BlockingSizes blocking = blocking_of<Arch>();
  constexpr int Rows = Vectors == 2 ? blocking.wide_rows : blocking.narrow_rows;
  constexpr int64_t panel = Vectors * static_cast<int64_t>(xsimd::batch<float, Arch>::size);

  const int64_t real_columns = describe_columns(plan, job, scratch);
  const int64_t padded_columns = (real_columns + panel - 1) / panel * panel;
  pack_scaled_queries(plan, job, scratch.columns, real_columns, padded_columns, plan.q, plan.scale,
                      scratch.packed_queries);
  const int64_t k_stride = plan.k.strides[2];
  for (int64_t first_key = job.key_begin; first_key < job.key_end; first_key += plan.key_block) {
    const int64_t rows = std::min(plan.key_block, job.key_end - first_key);
    gemm_block<Arch, Rows, Vectors, false>(rows, padded_columns, plan.head_dim,
                                           plan.k.row(job.batch, job.kv_head, first_key), k_stride,
                                           1, scratch.packed_queries, padded_columns,
                                           scratch.scores, padded_columns);
    for (int64_t c = 0; c < real_columns; ++c) {
      const ColumnInfo& column = scratch.columns[c];
      float* out = plan.weights.row(job.batch, column.head, column.position) + first_key;
      for (int64_t r = 0; r < rows; ++r) out[r] = scratch.scores[r * padded_columns + c];
    }
  }
}

// out[b, head(c), position(c), :] = Σ_j weights[b, head(c), position(c), j] · v_j: the caller's
// weights are gathered key-major (Pᵀ) one key block at a time, then Oᵀ += Vᵀ · Pᵀ.
template <class Arch, int Vectors>
inline void run_weights_v_tile(const AttentionPlan& plan, const TileJob& job, TileScratch& scratch) {
  constexpr BlockingSizes blocking = blocking_of<Arch>();
  constexpr int Rows = Vectors == 2 ? blocking.wide_rows : blocking.narrow_rows;
  constexpr int64_t panel = Vectors * static_cast<int64_t>(xsimd::batch<float, Arch>::size);

  const int64_t real_columns = describe_columns(plan, job, scratch);
  const int64_t padded_columns = (real_columns + panel - 1) / panel * panel;
  std::fill(scratch.accumulator, scratch.accumulator + plan.value_dim * padded_columns, 0.0f);
  const int64_t v_stride = plan.v.strides[2];
  for (int64_t first_key = job.key_begin; first_key < job.key_end; first_key += plan.key_block) {
    const int64_t rows = std::min(plan.key_block, job.key_end - first_key);
    for (int64_t r = 0; r < rows; ++r) {
      std::fill(scratch.scores + r * padded_columns + real_columns,
                scratch.scores + (r + 1) * padded_columns, 0.0f);
    }
    for (int64_t c = 0; c < real_columns; ++c) {
      const ColumnInfo& column = scratch.columns[c];
      const float* weights = plan.probabilities.row(job.batch, column.head, column.position) + first_key;
      for (int64_t r = 0; r < rows; ++r) scratch.scores[r * padded_columns + c] = weights[r];
    }
    gemm_block<Arch, Rows, Vectors, true>(plan.value_dim, padded_columns, rows,
                                          plan.v.row(job.batch, job.kv_head, first_key), 1,
                                          v_stride, scratch.scores, padded_columns,
                                          scratch.accumulator, padded_columns);
  }
  for (int64_t c = 0; c < real_columns; ++c) {
    const ColumnInfo& column = scratch.columns[c];
    float* out = plan.out.row(job.batch, column.head, column.position);
    for (int64_t n = 0; n < plan.value_dim; ++n) out[n] = scratch.accumulator[n * padded_columns + c];
  }
}

template <class Arch>
void QkScoresTile::operator()(Arch, const AttentionPlan& plan, const TileJob& job,
                              TileScratch& scratch) const {
  if (plan.panel_vectors == 1) {
    run_qk_scores_tile<Arch, 1>(plan, job, scratch);
  } else {
    run_qk_scores_tile<Arch, 2>(plan, job, scratch);
  }
}

template <class Arch>
void WeightsVTile::operator()(Arch, const AttentionPlan& plan, const TileJob& job,
                              TileScratch& scratch) const {
  if (plan.panel_vectors == 1) {
    run_weights_v_tile<Arch, 1>(plan, job, scratch);
  } else {
    run_weights_v_tile<Arch, 2>(plan, job, scratch);
  }
}

}  // namespace simdattn::detail
