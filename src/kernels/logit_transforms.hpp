// The options that change logits, applied to a block of raw base-2 logits in the order the
// options define: soft-cap, ALiBi, additive mask, then visibility (causal, window, kv_lengths).
// A new bias or mask kind goes here.
#pragma once

#include <algorithm>
#include <cstdint>

#include <xsimd/xsimd.hpp>

#include "kernels/element_convert_impl.hpp"
#include "kernels/isa_namespace.hpp"
#include "kernels/score_layout.hpp"
#include "kernels/tile_kernels.hpp"
#include "kernels/tile_problem.hpp"
#include "kernels/vector_math.hpp"
#include "kernels/visible_keys.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

// Whether nothing between Q·Kᵀ and the softmax reads the logits' values: no soft-cap, ALiBi or
// mask (hiding a key by -inf, the only other transform, reads none). The fused tiles then take a
// block's max from the products, skip the registers no column sees (AVX-512) or fold the scale
// into the softmax (AMX).
inline bool logits_as_computed(const TileProblem& problem) {
  return problem.softcap <= 0.0f && problem.alibi_slopes == nullptr && !problem.has_mask;
}

// Per-column constants of the ALiBi bias: -slope (in base 2) and the diagonal position i + off.
// Zero slope for padded columns and when ALiBi is off.
inline void prepare_alibi(const TileProblem& problem, const TileJob& job, TileScratch& scratch,
                          int64_t real_columns, int64_t padded_columns) {
  const int64_t offset = diagonal_offset(problem, job.batch);
  for (int64_t c = 0; c < padded_columns; ++c) {
    const bool real = c < real_columns && problem.alibi_slopes != nullptr;
    scratch.alibi_slope[c] = real ? -problem.alibi_slopes[scratch.columns[c].head] * kLog2e : 0.0f;
    scratch.alibi_diagonal[c] = real ? static_cast<float>(scratch.columns[c].position + offset) : 0.0f;
  }
}

// Sets to -inf the logits of the keys r of a block that lie inside [block_begin[c], block_end[c])
// of their column c (HideInside), or outside it (scratch.block_begin / block_end, block-relative).
template <class Arch, bool HideInside>
inline void hide_keys_by_range(const TileScratch& scratch, int64_t padded_columns, int64_t rows) {
  using Floats = xsimd::batch<float, Arch>;
  constexpr int64_t W = Floats::size;
  const int64_t key_step = keys_per_register<Arch>(padded_columns);
  const Floats key_offsets = lane_key_offsets<Arch>(padded_columns);
  alignas(64) float begin_lanes[W], end_lanes[W];
  const float* begins = column_lanes<Arch>(scratch.block_begin, padded_columns, begin_lanes);
  const float* ends = column_lanes<Arch>(scratch.block_end, padded_columns, end_lanes);
  for (int64_t r = 0; r < rows; r += key_step) {
    const Floats key = Floats(static_cast<float>(r)) + key_offsets;
    for (int64_t c = 0; c < padded_columns; c += W) {
      const auto inside =
          (Floats::load_aligned(begins + c) <= key) & (key < Floats::load_aligned(ends + c));
      float* at = scratch.scores + r * padded_columns + c;
      const Floats logits = Floats::load_aligned(at);
      const Floats hidden(kMinusInfinity);
      (HideInside ? xsimd::select(inside, hidden, logits) : xsimd::select(inside, logits, hidden))
          .store_aligned(at);
    }
  }
}

// Sets to -inf the logits of keys in a column's sink-token gap (ColumnInfo::gap_begin/gap_end)
// within keys [first_key, first_key + rows); returns whether the block meets any gap. Only calls
// with sink tokens under a window have gaps, so others never come here.
template <class Arch>
inline bool hide_sink_token_gaps(TileScratch& scratch, int64_t real_columns, int64_t padded_columns,
                                 int64_t first_key, int64_t rows) {
  bool some_gap = false;
  for (int64_t c = 0; c < padded_columns; ++c) {
    const bool real = c < real_columns;
    const int64_t begin = real ? scratch.columns[c].gap_begin - first_key : 0;
    const int64_t end = real ? scratch.columns[c].gap_end - first_key : 0;
    scratch.block_begin[c] = static_cast<float>(std::clamp<int64_t>(begin, 0, rows));
    scratch.block_end[c] = static_cast<float>(std::clamp<int64_t>(end, 0, rows));
    some_gap |= scratch.block_begin[c] < scratch.block_end[c];
  }
  if (!some_gap) return false;
  hide_keys_by_range<Arch, true>(scratch, padded_columns, rows);
  return true;
}

// Turns the raw base-2 logits scores[r][c] of keys [first_key, first_key + rows) into biased,
// masked ones, every constant in base 2 too (c·tanh(s/c) is log2(e)·c·tanh(l/(log2(e)·c))), in
// the order the options define: soft-cap, ALiBi, additive mask, then visibility (an
// invisible key becomes -inf whatever its value, NaN included). Returns whether some real column
// may not see some key of the block (a visibility edge or an additive mask): only then can a
// zero weight meet a non-finite value that must not reach its column. padded_columns is a multiple
// or a divisor of W (keys_per_register); in the dense layout the lanes past the block's last key
// are transformed too and must be overwritten afterwards (online_softmax_block does).
template <class Arch>
inline bool transform_logits(const TileProblem& problem, const TileJob& job, TileScratch& scratch,
                             int64_t real_columns, int64_t padded_columns, int64_t first_key,
                             int64_t rows) {
  using Floats = xsimd::batch<float, Arch>;
  constexpr int64_t W = Floats::size;
  float* scores = scratch.scores;
  const int64_t key_step = keys_per_register<Arch>(padded_columns);
  const Floats key_offsets = lane_key_offsets<Arch>(padded_columns);
  if (problem.softcap > 0.0f) {
    const float base2_cap = problem.softcap * kLog2e;
    const Floats cap(base2_cap), inverse_cap(1.0f / base2_cap);
    for (int64_t i = 0; i < rows * padded_columns; i += W) {
      const Floats logit = Floats::load_aligned(scores + i);
      (cap * tanh_approx<Arch>(logit * inverse_cap)).store_aligned(scores + i);
    }
  }
  if (problem.alibi_slopes != nullptr) {
    alignas(64) float diagonal_lanes[W], slope_lanes[W];
    const float* diagonals = column_lanes<Arch>(scratch.alibi_diagonal, padded_columns, diagonal_lanes);
    const float* slopes = column_lanes<Arch>(scratch.alibi_slope, padded_columns, slope_lanes);
    for (int64_t r = 0; r < rows; r += key_step) {
      const Floats key = Floats(static_cast<float>(first_key + r)) + key_offsets;
      for (int64_t c = 0; c < padded_columns; c += W) {
        const Floats distance = xsimd::abs(Floats::load_aligned(diagonals + c) - key);
        const Floats biased = multiply_add<Arch>(Floats::load_aligned(slopes + c), distance,
                                                 Floats::load_aligned(scores + r * padded_columns + c));
        biased.store_aligned(scores + r * padded_columns + c);
      }
    }
  }
  if (problem.has_mask) {
    const AnyConstTensorView& mask = problem.mask;
    for (int64_t c = 0; c < real_columns; ++c) {
      const ColumnInfo& column = scratch.columns[c];
      const void* mask_start = mask.row(mask.shape[0] == 1 ? 0 : job.batch,
                                        mask.shape[1] == 1 ? 0 : column.head,
                                        mask.shape[2] == 1 ? 0 : column.position);
      // A mask of one key (the only one whose strides[3] may differ from 1) has first_key 0.
      const float* mask_row = scratch.widened_mask;
      if (mask.dtype == DType::f32) {
        mask_row = static_cast<const float*>(mask_start) + first_key;
      } else {
        widen_row<Arch>(static_cast<const unsigned char*>(mask_start) + first_key * dtype_size(mask.dtype),
                        mask.dtype, rows, scratch.widened_mask, nullptr, 1);
      }
      // -inf excludes the key whatever its logit (NaN included), as in the oracle.
      for (int64_t r = 0; r < rows; ++r) {
        float& logit = scores[r * padded_columns + c];
        logit = mask_row[r] == kMinusInfinity ? kMinusInfinity : logit + mask_row[r] * kLog2e;
      }
    }
  }
  // Sink tokens under a window: the keys between them and a column's window.
  const bool gap_hidden =
      problem.sink_tokens > 0 &&
      hide_sink_token_gaps<Arch>(scratch, real_columns, padded_columns, first_key, rows);
  // Visibility: only blocks that some column sees partly need the per-element test.
  bool partly_visible = false;
  for (int64_t c = 0; c < padded_columns; ++c) {
    const bool real = c < real_columns;
    const int64_t begin = real ? scratch.columns[c].visible_begin - first_key : 0;
    const int64_t end = real ? scratch.columns[c].visible_end - first_key : rows;
    scratch.block_begin[c] = static_cast<float>(std::clamp<int64_t>(begin, 0, rows));
    scratch.block_end[c] = static_cast<float>(std::clamp<int64_t>(end, 0, rows));
    partly_visible |= begin > 0 || end < rows;
  }
  if (!partly_visible) return problem.has_mask || gap_hidden;
  hide_keys_by_range<Arch, false>(scratch, padded_columns, rows);
  return true;
}

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE
