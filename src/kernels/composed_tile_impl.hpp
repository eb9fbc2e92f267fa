// attention() for one work item in three stages on a materialised score block: Q·Kᵀ for every key
// the tile sees, softmax down each column (max, exp and sum, scale), then P·V. Needed when the
// caller asks for the weights; scratch grows with Sk (keys × columns floats per thread).
// A column's max is never -inf here unless it sees nothing.
#pragma once

#include "kernels/isa_namespace.hpp"
#include "kernels/gemm_microkernel.hpp"
#include "kernels/head_rows.hpp"
#include "kernels/key_major_tile.hpp"
#include "kernels/logit_transforms.hpp"
#include "kernels/online_softmax.hpp"
#include "kernels/query_packing.hpp"
#include "kernels/tile_columns.hpp"
#include "kernels/tile_outputs.hpp"
#include "kernels/value_accumulation.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

// weights[b, head(c), position(c), :] = column c of the exponentials divided by its sum, zeros
// outside `keys` and for a column that sees nothing.
inline void write_weight_rows(const TileProblem& problem, const TileJob& job,
                              const TileScratch& scratch, int64_t real_columns,
                              int64_t padded_columns, KeyRange keys) {
  for (int64_t c = 0; c < real_columns; ++c) {
    const ColumnInfo& column = scratch.columns[c];
    const float sum = scratch.running_sum[c];
    const float inverse = sum > 0.0f ? 1.0f / sum : (sum == 0.0f ? 0.0f : sum);
    // Keys outside the tile's range weigh 0, or NaN like the rest of a NaN row (torch.softmax).
    const float outside = 0.0f * inverse;
    float* row = problem.weights.row(job.batch, column.head, column.position);
    std::fill(row, row + keys.begin, outside);
    for (int64_t j = keys.begin; j < keys.end; ++j) {
      row[j] = scratch.scores[(j - keys.begin) * padded_columns + c] * inverse;
    }
    std::fill(row + keys.end, row + problem.sk, outside);
  }
}

template <class Arch, int Vectors>
inline void run_composed_tile(const TileProblem& problem, const TileJob& job, TileScratch& scratch) {
  constexpr int Rows = KeyMajorTile<Arch, Vectors>::kRows;
  const auto [real_columns, padded_columns, keys] =
      start_tile(problem, job, scratch, KeyMajorTile<Arch, Vectors>::kPanel);
  const int64_t rows = keys.end - keys.begin;
  pack_scaled_queries<Arch>(problem, job, scratch.columns, real_columns, padded_columns, problem.q,
                            base2_logit_scale(problem), scratch.packed_queries, scratch.widened_queries);
  prepare_alibi(problem, job, scratch, real_columns, padded_columns);

  // Stage 1: every logit of the tile.
  const RowBlock key_block = key_source<Arch>(problem, job, scratch).rows(keys.begin, rows);
  const RowBlock value_block = value_source<Arch>(problem, job, scratch).rows(keys.begin, rows);
  gemm_block<Arch, Rows, Vectors, false>(rows, padded_columns, problem.head_dim, key_block.first,
                                         key_block.stride, 1,
                                         scratch.packed_queries, padded_columns, scratch.scores,
                                         padded_columns);
  const bool some_key_hidden =
      transform_logits<Arch>(problem, job, scratch, real_columns, padded_columns, keys.begin, rows);
  // Stage 2: softmax down each column (the division by the sum waits for the outputs).
  std::fill(scratch.running_max, scratch.running_max + padded_columns, kMinusInfinity);
  std::fill(scratch.running_sum, scratch.running_sum + padded_columns, 0.0f);
  seed_sink_logits(problem, job, scratch, real_columns);
  online_softmax_block<Arch>(scratch.scores, rows, padded_columns, scratch.running_max,
                             scratch.running_sum, scratch.correction);
  if (problem.has_weights) write_weight_rows(problem, job, scratch, real_columns, padded_columns, keys);
  // Stage 3: Oᵀ = Vᵀ · P.
  const float* values = value_block.first;
  const int64_t v_stride = value_block.stride;
  if (rows > 0 && (!some_key_hidden || rows_are_finite<Arch>(values, v_stride, rows, problem.value_dim))) {
    gemm_block<Arch, Rows, Vectors, false>(problem.value_dim, padded_columns, rows, values, 1,
                                           v_stride, scratch.scores, padded_columns,
                                           scratch.accumulator, padded_columns);
  } else {
    std::fill(scratch.accumulator, scratch.accumulator + problem.value_dim * padded_columns, 0.0f);
    accumulate_visible_values(scratch.scores, rows, padded_columns, real_columns, values, v_stride,
                              problem.value_dim, scratch.accumulator, {padded_columns, 1});
  }
  write_normalized_outputs<Arch>(problem, job, scratch, real_columns, {padded_columns, 1});
}

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE

namespace simdattn::detail {

template <class Arch>
void ComposedTile::operator()(Arch, const TileProblem& problem, const TileJob& job,
                              TileScratch& scratch) const {
  using namespace SIMDATTN_ISA_NAMESPACE;
  with_panel_vectors<Arch>(problem.panel_vectors, [&](auto vectors) {
    run_composed_tile<Arch, decltype(vectors)::value>(problem, job, scratch);
  });
}

}  // namespace simdattn::detail
