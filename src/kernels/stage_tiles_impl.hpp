// The three stages as separate calls on the caller's tensors: qk_scores and weights_v per work
// item (the same micro-kernel and key-major tiles as attention), softmax_rows per row.
#pragma once

#include "kernels/isa_namespace.hpp"
#include "kernels/element_convert_impl.hpp"
#include "kernels/gemm_microkernel.hpp"
#include "kernels/head_rows.hpp"
#include "kernels/key_major_tile.hpp"
#include "kernels/query_packing.hpp"
#include "kernels/tile_columns.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

// scores[b, head(c), position(c), j] = scale · q·k_j for every key (a stage plan has no masks, so
// every key is visible), one key block at a time.
template <class Arch, int Vectors>
inline void run_qk_scores_tile(const TileProblem& problem, const TileJob& job, TileScratch& scratch) {
  constexpr int Rows = KeyMajorTile<Arch, Vectors>::kRows;
  const auto [real_columns, padded_columns, keys] =
      start_tile(problem, job, scratch, KeyMajorTile<Arch, Vectors>::kPanel);
  pack_scaled_queries<Arch>(problem, job, scratch.columns, real_columns, padded_columns, problem.q, problem.scale,
                            scratch.packed_queries, scratch.widened_queries);
  const RowSource<Arch> key_rows = key_source<Arch>(problem, job, scratch);
  for (int64_t first_key = keys.begin; first_key < keys.end; first_key += problem.key_block) {
    const int64_t rows = std::min(problem.key_block, keys.end - first_key);
    const RowBlock key_block = key_rows.rows(first_key, rows);
    gemm_block<Arch, Rows, Vectors, false>(rows, padded_columns, problem.head_dim, key_block.first,
                                           key_block.stride, 1, scratch.packed_queries, padded_columns,
                                           scratch.scores, padded_columns);
    for (int64_t c = 0; c < real_columns; ++c) {
      const ColumnInfo& column = scratch.columns[c];
      float* out = problem.scores.row(job.batch, column.head, column.position) + first_key;
      for (int64_t r = 0; r < rows; ++r) out[r] = scratch.scores[r * padded_columns + c];
    }
  }
}

// out[b, head(c), position(c), :] = Σ_j weights[b, head(c), position(c), j] · v_j: the caller's
// weights are gathered key-major (Pᵀ) one key block at a time, then Oᵀ += Vᵀ · Pᵀ.
template <class Arch, int Vectors>
inline void run_weights_v_tile(const TileProblem& problem, const TileJob& job, TileScratch& scratch) {
  constexpr int Rows = KeyMajorTile<Arch, Vectors>::kRows;
  const auto [real_columns, padded_columns, keys] =
      start_tile(problem, job, scratch, KeyMajorTile<Arch, Vectors>::kPanel);
  std::fill(scratch.accumulator, scratch.accumulator + problem.value_dim * padded_columns, 0.0f);
  const RowSource<Arch> value_rows = value_source<Arch>(problem, job, scratch);
  for (int64_t first_key = keys.begin; first_key < keys.end; first_key += problem.key_block) {
    const int64_t rows = std::min(problem.key_block, keys.end - first_key);
    for (int64_t r = 0; r < rows; ++r) {
      std::fill(scratch.scores + r * padded_columns + real_columns,
                scratch.scores + (r + 1) * padded_columns, 0.0f);
    }
    for (int64_t c = 0; c < real_columns; ++c) {
      const ColumnInfo& column = scratch.columns[c];
      const float* weights = problem.probabilities.row(job.batch, column.head, column.position) + first_key;
      for (int64_t r = 0; r < rows; ++r) scratch.scores[r * padded_columns + c] = weights[r];
    }
    const RowBlock value_block = value_rows.rows(first_key, rows);
    gemm_block<Arch, Rows, Vectors, true>(problem.value_dim, padded_columns, rows, value_block.first,
                                          1, value_block.stride, scratch.scores, padded_columns,
                                          scratch.accumulator, padded_columns);
  }
  // Rounded outputs go through a float row (output_rows) first.
  const bool rounded = problem.out.dtype != DType::f32;
  for (int64_t c = 0; c < real_columns; ++c) {
    const ColumnInfo& column = scratch.columns[c];
    void* destination = problem.out.row(job.batch, column.head, column.position);
    float* out = rounded ? scratch.output_rows : static_cast<float*>(destination);
    for (int64_t n = 0; n < problem.value_dim; ++n) out[n] = scratch.accumulator[n * padded_columns + c];
    if (rounded) narrow_row<Arch>(out, problem.value_dim, destination, problem.out.dtype);
  }
}

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE

namespace simdattn::detail {

template <class Arch>
void QkScoresTile::operator()(Arch, const TileProblem& problem, const TileJob& job,
                              TileScratch& scratch) const {
  using namespace SIMDATTN_ISA_NAMESPACE;
  with_panel_vectors<Arch>(problem.panel_vectors, [&](auto vectors) {
    run_qk_scores_tile<Arch, decltype(vectors)::value>(problem, job, scratch);
  });
}

template <class Arch>
void WeightsVTile::operator()(Arch, const TileProblem& problem, const TileJob& job,
                              TileScratch& scratch) const {
  using namespace SIMDATTN_ISA_NAMESPACE;
  with_panel_vectors<Arch>(problem.panel_vectors, [&](auto vectors) {
    run_weights_v_tile<Arch, decltype(vectors)::value>(problem, job, scratch);
  });
}

}  // namespace simdattn::detail
