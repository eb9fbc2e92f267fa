// The queries of a key-major tile packed once per tile, transposed and scaled (Qᵀ), so that
// every key row can be broadcast against them without packing K.
#pragma once

#include <algorithm>
#include <cstdint>

#include <xsimd/xsimd.hpp>

#include "kernels/head_rows.hpp"
#include "kernels/isa_namespace.hpp"
#include "kernels/tile_kernels.hpp"
#include "kernels/tile_problem.hpp"
#include "kernels/transpose.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

// The scale that puts the attention tiles' logits in base 2 (kLog2e): the packed queries carry it.
inline float base2_logit_scale(const TileProblem& problem) { return problem.scale * kLog2e; }

// packed[d][c] = scale · q[b, head(c), position(c), d]; padded columns are 0. Gathering Qᵀ once
// per tile lets every key row be broadcast against it without packing K. Whole W × W blocks are
// transposed in registers; the head_dim tail goes element by element.
// Rows of q that are not fp32 are widened first, into `widened` (W rows of head_dim_padded).
template <class Arch>
inline void pack_scaled_queries(const TileProblem& problem, const TileJob& job,
                                const ColumnInfo* columns, int64_t real_columns,
                                int64_t padded_columns, const AnyConstTensorView& queries,
                                float scale, float* packed, float* widened) {
  using Floats = xsimd::batch<float, Arch>;
  constexpr int64_t W = Floats::size;
  const int64_t full_depth = problem.head_dim - problem.head_dim % W;
  const int64_t widened_stride = (problem.head_dim + 15) / 16 * 16;
  for (int64_t c0 = 0; c0 < real_columns; c0 += W) {
    const int64_t count = std::min(W, real_columns - c0);
    const float* rows[W];
    for (int64_t j = 0; j < count; ++j) {
      rows[j] = float_row<Arch>(queries, job.batch, columns[c0 + j].head, columns[c0 + j].position,
                                widened == nullptr ? nullptr : widened + j * widened_stride);
    }
    for (int64_t d0 = 0; d0 < full_depth; d0 += W) {
      Floats block[W];
      for (int64_t j = 0; j < W; ++j) block[j] = j < count ? Floats::load_unaligned(rows[j] + d0) : Floats(0.0f);
      transpose_in_registers<Arch>(block);
      for (int64_t i = 0; i < W; ++i) {
        (block[i] * Floats(scale)).store_aligned(packed + (d0 + i) * padded_columns + c0);
      }
    }
    for (int64_t d = full_depth; d < problem.head_dim; ++d) {
      for (int64_t j = 0; j < count; ++j) packed[d * padded_columns + c0 + j] = scale * rows[j][d];
    }
  }
  for (int64_t d = 0; d < problem.head_dim; ++d) {
    std::fill(packed + d * padded_columns + real_columns, packed + (d + 1) * padded_columns, 0.0f);
  }
}

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE
