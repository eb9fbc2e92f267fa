// The pieces every tile kernel shares: the ISA's block sizes, the packed queries, the per-column
// bookkeeping, the logit transforms and the column-wise (key-major) softmax passes.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "isa/registry.hpp"
#include "kernels/gemm_microkernel.hpp"
#include "kernels/isa_namespace.hpp"
#include "kernels/key_value_source.hpp"
#include "kernels/tile_kernels.hpp"
#include "kernels/transpose.hpp"
#include "kernels/vector_math.hpp"
#include "plan/visibility.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

inline constexpr float kMinusInfinity = -std::numeric_limits<float>::infinity();

// The query columns of a job: column c = g · positions + t is query head kv_head · group + g at
// position query_begin + t. Returns the number of real columns; the padded ones after them carry
// zeros. Also fills each column's visible key range, clipped to the job's keys.
inline int64_t describe_columns(const AttentionPlan& plan, const TileJob& job,
                                TileScratch& scratch) {
  const int64_t positions = job.query_end - job.query_begin;
  int64_t c = 0;
  for (int64_t g = 0; g < plan.group; ++g) {
    for (int64_t t = 0; t < positions; ++t, ++c) {
      ColumnInfo& column = scratch.columns[c];
      column.head = job.kv_head * plan.group + g;
      column.position = job.query_begin + t;
      const KeyRange range = visible_keys(plan, job.batch, column.position);
      column.visible_begin = std::max(range.begin, job.key_begin);
      column.visible_end = std::min(range.end, job.key_end);
    }
  }
  return c;
}

// The keys any real column sees: [begin, end), empty when none does.
inline KeyRange keys_seen_by_tile(const TileScratch& scratch, int64_t real_columns) {
  KeyRange range{std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min()};
  for (int64_t c = 0; c < real_columns; ++c) {
    const ColumnInfo& column = scratch.columns[c];
    if (column.visible_begin >= column.visible_end) continue;
    range.begin = std::min(range.begin, column.visible_begin);
    range.end = std::max(range.end, column.visible_end);
  }
  if (range.begin >= range.end) return {0, 0};
  return range;
}

// Whether every real column sees every key of [first_key, first_key + rows).
inline bool every_column_sees(const TileScratch& scratch, int64_t real_columns, int64_t first_key,
                              int64_t rows) {
  for (int64_t c = 0; c < real_columns; ++c) {
    const ColumnInfo& column = scratch.columns[c];
    if (column.visible_begin > first_key || column.visible_end < first_key + rows) return false;
  }
  return true;
}

// The micro-kernel shape of a key-major tile whose columns come in panels of Vectors registers.
template <class Arch, int Vectors>
struct KeyMajorTile {
  static_assert(Vectors == 1 || Vectors == 2 || Vectors == 4, "panels are 1, 2 or 4 registers");
  static constexpr int64_t kPanel = Vectors * static_cast<int64_t>(xsimd::batch<float, Arch>::size);
  static constexpr int kRows = blocking_of<Arch>().micro_rows[Vectors == 4 ? 2 : Vectors - 1];
  static_assert(kRows > 0, "no micro-kernel of this panel width on this ISA");
};

// Calls run(std::integral_constant<int, V>{}) for the plan's panel width V (1, 2 or the ISA's
// widest), so that each tile kernel is instantiated once per panel width the ISA has.
template <class Arch, class Run>
inline void with_panel_vectors(int panel_vectors, Run&& run) {
  constexpr int kWide = blocking_of<Arch>().wide_vectors;
  if (panel_vectors == 1) {
    run(std::integral_constant<int, 1>{});
  } else if (panel_vectors == 2 || kWide == 2) {
    run(std::integral_constant<int, 2>{});
  } else {
    run(std::integral_constant<int, kWide>{});
  }
}

// A tile's query columns: how many are real, how many the panels make, and the keys they see.
struct TileColumns {
  int64_t real;
  int64_t padded;
  KeyRange keys;
};

inline TileColumns start_tile(const AttentionPlan& plan, const TileJob& job, TileScratch& scratch,
                              int64_t panel) {
  const int64_t real = describe_columns(plan, job, scratch);
  return {real, (real + panel - 1) / panel * panel, keys_seen_by_tile(scratch, real)};
}

// The key and value rows of a job's (batch, kv head), as the kernels read them: in place (f32)
// or widened a block at a time into the thread's buffers.
template <class Arch>
inline RowSource<Arch> rows_of_head(const AnyConstTensorView& input, const ConstTensorView& scales,
                                    const TileJob& job, float* buffer) {
  const bool scaled = scales.data != nullptr;
  return {input.row(job.batch, job.kv_head, 0),
          input.dtype,
          input.strides[2],
          input.shape[3],
          input.shape[2],
          scaled ? scales.row(job.batch, job.kv_head, 0) : nullptr,
          scaled ? scales.strides[2] : 0,
          scaled ? input.shape[3] / scales.shape[3] : 1,
          buffer,
          (input.shape[3] + 15) / 16 * 16};
}
template <class Arch>
inline RowSource<Arch> key_source(const AttentionPlan& plan, const TileJob& job,
                                  const TileScratch& scratch) {
  return rows_of_head<Arch>(plan.k, plan.k_scale, job, scratch.widened_keys);
}
template <class Arch>
inline RowSource<Arch> value_source(const AttentionPlan& plan, const TileJob& job,
                                    const TileScratch& scratch) {
  return rows_of_head<Arch>(plan.v, plan.v_scale, job, scratch.widened_values);
}

// Row (b, head, position) of q (or of the weights, for weights_v) as floats: in place for f32,
// else widened into `widened` (head_dim floats).
template <class Arch>
inline const float* float_row(const AnyConstTensorView& view, int64_t b, int64_t head,
                              int64_t position, float* widened) {
  const void* row = view.row(b, head, position);
  if (view.dtype == DType::f32) return static_cast<const float*>(row);
  widen_row<Arch>(row, view.dtype, view.shape[3], widened, nullptr, 1);
  return widened;
}

// The scale that puts the attention tiles' logits in base 2 (kLog2e): the packed queries carry it.
inline float base2_logit_scale(const AttentionPlan& plan) { return plan.scale * kLog2e; }

// packed[d][c] = scale · q[b, head(c), position(c), d]; padded columns are 0. Gathering Qᵀ once
// per tile lets every key row be broadcast against it without packing K. Whole W × W blocks are
// transposed in registers; the head_dim tail goes element by element.
// Rows of q that are not fp32 are widened first, into `widened` (W rows of head_dim_padded).
template <class Arch>
inline void pack_scaled_queries(const AttentionPlan& plan, const TileJob& job,
                                const ColumnInfo* columns, int64_t real_columns,
                                int64_t padded_columns, const AnyConstTensorView& queries,
                                float scale, float* packed, float* widened) {
  using Floats = xsimd::batch<float, Arch>;
  constexpr int64_t W = Floats::size;
  const int64_t full_depth = plan.head_dim - plan.head_dim % W;
  const int64_t widened_stride = (plan.head_dim + 15) / 16 * 16;
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
    for (int64_t d = full_depth; d < plan.head_dim; ++d) {
      for (int64_t j = 0; j < count; ++j) packed[d * padded_columns + c0 + j] = scale * rows[j][d];
    }
  }
  for (int64_t d = 0; d < plan.head_dim; ++d) {
    std::fill(packed + d * padded_columns + real_columns, packed + (d + 1) * padded_columns, 0.0f);
  }
}

// Per-column constants of the ALiBi bias: -slope (in base 2) and the diagonal position i + off.
// Zero slope for padded columns and when ALiBi is off.
inline void prepare_alibi(const AttentionPlan& plan, const TileJob& job, TileScratch& scratch,
                          int64_t real_columns, int64_t padded_columns) {
  const int64_t offset = diagonal_offset(plan, job.batch);
  for (int64_t c = 0; c < padded_columns; ++c) {
    const bool real = c < real_columns && plan.alibi_slopes != nullptr;
    scratch.alibi_slope[c] = real ? -plan.alibi_slopes[scratch.columns[c].head] * kLog2e : 0.0f;
    scratch.alibi_diagonal[c] = real ? static_cast<float>(scratch.columns[c].position + offset) : 0.0f;
  }
}

// A block scores[rows][columns] is read W floats at a time. Key-major tiles have a multiple of W
// columns: a register holds W columns of one key. Decoding tiles may have fewer, a divisor of W
// (their dense layout): a register then holds W / columns keys of every column, lane l being key
// l / columns and column l % columns, so that no lane is padding.
template <class Arch>
inline int64_t keys_per_register(int64_t columns) {
  constexpr int64_t W = xsimd::batch<float, Arch>::size;
  return columns < W ? W / columns : 1;
}

// Lane l's key relative to the first key of its register (see keys_per_register).
template <class Arch>
inline xsimd::batch<float, Arch> lane_key_offsets(int64_t columns) {
  using Floats = xsimd::batch<float, Arch>;
  constexpr int64_t W = Floats::size;
  alignas(64) float offsets[W];
  for (int64_t l = 0; l < W; ++l) offsets[l] = static_cast<float>(columns < W ? l / columns : 0);
  return Floats::load_aligned(offsets);
}

// A per-column array as the score registers' lanes see it: the array itself, or in the dense
// layout its values repeated across one register, written into `tiled` (W floats).
template <class Arch>
inline const float* column_lanes(const float* per_column, int64_t columns, float* tiled) {
  constexpr int64_t W = xsimd::batch<float, Arch>::size;
  if (columns >= W) return per_column;
  for (int64_t l = 0; l < W; ++l) tiled[l] = per_column[l % columns];
  return tiled;
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
inline bool transform_logits(const AttentionPlan& plan, const TileJob& job, TileScratch& scratch,
                             int64_t real_columns, int64_t padded_columns, int64_t first_key,
                             int64_t rows) {
  using Floats = xsimd::batch<float, Arch>;
  constexpr int64_t W = Floats::size;
  float* scores = scratch.scores;
  const int64_t key_step = keys_per_register<Arch>(padded_columns);
  const Floats key_offsets = lane_key_offsets<Arch>(padded_columns);
  if (plan.softcap > 0.0f) {
    const float base2_cap = plan.softcap * kLog2e;
    const Floats cap(base2_cap), inverse_cap(1.0f / base2_cap);
    for (int64_t i = 0; i < rows * padded_columns; i += W) {
      const Floats logit = Floats::load_aligned(scores + i);
      (cap * tanh_approx<Arch>(logit * inverse_cap)).store_aligned(scores + i);
    }
  }
  if (plan.alibi_slopes != nullptr) {
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
  if (plan.has_mask) {
    const AnyConstTensorView& mask = plan.mask;
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
  if (!partly_visible) return plan.has_mask;
  alignas(64) float begin_lanes[W], end_lanes[W];
  const float* begins = column_lanes<Arch>(scratch.block_begin, padded_columns, begin_lanes);
  const float* ends = column_lanes<Arch>(scratch.block_end, padded_columns, end_lanes);
  for (int64_t r = 0; r < rows; r += key_step) {
    const Floats key = Floats(static_cast<float>(r)) + key_offsets;
    for (int64_t c = 0; c < padded_columns; c += W) {
      const auto visible =
          (Floats::load_aligned(begins + c) <= key) & (key < Floats::load_aligned(ends + c));
      float* at = scores + r * padded_columns + c;
      xsimd::select(visible, Floats::load_aligned(at), Floats(kMinusInfinity)).store_aligned(at);
    }
  }
  return true;
}

// The value subtracted before exponentiating: the max, or 0 when the max is -inf (nothing
// visible yet), so that 2^(-inf - 0) = 0 instead of NaN.
template <class Arch>
inline xsimd::batch<float, Arch> exp_shift(xsimd::batch<float, Arch> max) {
  using Floats = xsimd::batch<float, Arch>;
  return xsimd::select(max == Floats(kMinusInfinity), Floats(0.0f), max);
}

// block_max[g] = max over rows r of scores[r · row_stride + g · W], for `Registers` registers.
// Row r goes to max chain r % 4: four independent chains hide the latency of max, which a single
// chain down the block's rows would wait on at every row.
template <class Arch, int Registers>
inline void max_down_rows(const float* scores, int64_t rows, int64_t row_stride,
                          xsimd::batch<float, Arch>* block_max) {
  using Floats = xsimd::batch<float, Arch>;
  constexpr int64_t W = Floats::size;
  constexpr int Chains = 4;
  Floats chain_max[Chains][Registers];
#pragma GCC unroll 4
  for (int g = 0; g < Registers; ++g) {
#pragma GCC unroll 4
    for (int k = 0; k < Chains; ++k) chain_max[k][g] = Floats(kMinusInfinity);
  }
  int64_t r = 0;
  for (; r + Chains <= rows; r += Chains) {
#pragma GCC unroll 4
    for (int k = 0; k < Chains; ++k) {
#pragma GCC unroll 4
      for (int g = 0; g < Registers; ++g) {
        const Floats logits = Floats::load_aligned(scores + (r + k) * row_stride + g * W);
        chain_max[k][g] = xsimd::max(chain_max[k][g], logits);
      }
    }
  }
  for (; r < rows; ++r) {
#pragma GCC unroll 4
    for (int g = 0; g < Registers; ++g) {
      const Floats logits = Floats::load_aligned(scores + r * row_stride + g * W);
      chain_max[0][g] = xsimd::max(chain_max[0][g], logits);
    }
  }
#pragma GCC unroll 4
  for (int g = 0; g < Registers; ++g) {
    block_max[g] = xsimd::max(xsimd::max(chain_max[0][g], chain_max[1][g]),
                              xsimd::max(chain_max[2][g], chain_max[3][g]));
  }
}

// The online-softmax update of `Registers` registers of columns (see online_softmax_block); the
// block's max (known_max, or taken down the rows) and sum stay in registers across the rows.
template <class Arch, int Registers>
inline void online_softmax_columns(float* scores, int64_t rows, int64_t row_stride,
                                   float* running_max, float* running_sum, float* correction,
                                   const float* known_max) {
  using Floats = xsimd::batch<float, Arch>;
  constexpr int64_t W = Floats::size;
  Floats block_max[Registers], shift[Registers], sum[Registers];
  if (known_max != nullptr) {
#pragma GCC unroll 4
    for (int g = 0; g < Registers; ++g) block_max[g] = Floats::load_aligned(known_max + g * W);
  } else {
    max_down_rows<Arch, Registers>(scores, rows, row_stride, block_max);
  }
#pragma GCC unroll 4
  for (int g = 0; g < Registers; ++g) sum[g] = Floats(0.0f);
#pragma GCC unroll 4
  for (int g = 0; g < Registers; ++g) {
    const Floats old_max = Floats::load_aligned(running_max + g * W);
    const Floats new_max = xsimd::max(old_max, block_max[g]);
    shift[g] = exp_shift<Arch>(new_max);
    new_max.store_aligned(running_max + g * W);
    exp2_approx<Arch>(old_max - shift[g]).store_aligned(correction + g * W);
  }
  for (int64_t r = 0; r < rows; ++r) {
#pragma GCC unroll 4
    for (int g = 0; g < Registers; ++g) {
      float* at = scores + r * row_stride + g * W;
      const Floats e = exp2_approx<Arch>(Floats::load_aligned(at) - shift[g]);
      e.store_aligned(at);
      sum[g] += e;
    }
  }
#pragma GCC unroll 4
  for (int g = 0; g < Registers; ++g) {
    const Floats previous = Floats::load_aligned(running_sum + g * W);
    multiply_add<Arch>(previous, Floats::load_aligned(correction + g * W), sum[g])
        .store_aligned(running_sum + g * W);
  }
}

// online_softmax_block for the dense layout (padded_columns = P divides W): a register holds W / P
// keys of every column, so the block's max (max_down_rows, with registers as rows of W floats) and
// sum are taken over registers and then folded lane by lane into their columns. The lanes past
// the last key become -inf first.
template <class Arch>
inline void online_softmax_dense(float* scores, int64_t rows, int64_t columns, float* running_max,
                                 float* running_sum, float* correction) {
  using Floats = xsimd::batch<float, Arch>;
  constexpr int64_t W = Floats::size;
  const int64_t floats = rows * columns, registers = (floats + W - 1) / W;
  std::fill(scores + floats, scores + registers * W, kMinusInfinity);
  Floats block_max;
  max_down_rows<Arch, 1>(scores, registers, W, &block_max);
  alignas(64) float lanes[W], old_max[W], shift[W], tiled[W];
  block_max.store_aligned(lanes);
  for (int64_t c = 0; c < columns; ++c) {
    float column_max = lanes[c];
    for (int64_t l = c + columns; l < W; l += columns) column_max = std::max(column_max, lanes[l]);
    old_max[c] = running_max[c];
    running_max[c] = std::max(old_max[c], column_max);
    shift[c] = running_max[c] == kMinusInfinity ? 0.0f : running_max[c];
  }
  const Floats shifts = Floats::load_aligned(column_lanes<Arch>(shift, columns, tiled));
  const Floats previous = Floats::load_aligned(column_lanes<Arch>(old_max, columns, tiled));
  exp2_approx<Arch>(previous - shifts).store_aligned(lanes);
  std::copy(lanes, lanes + columns, correction);
  Floats sum(0.0f);
  for (int64_t i = 0; i < registers; ++i) {
    const Floats e = exp2_approx<Arch>(Floats::load_aligned(scores + i * W) - shifts);
    e.store_aligned(scores + i * W);
    sum += e;
  }
  sum.store_aligned(lanes);
  for (int64_t c = 0; c < columns; ++c) {
    float block_sum = 0.0f;
    for (int64_t l = c; l < W; l += columns) block_sum += lanes[l];
    running_sum[c] = running_sum[c] * correction[c] + block_sum;
  }
}

// One key block of the online softmax, down each column of base-2 logits scores[rows][padded_columns]:
//   new_max = max(running_max, max_r scores[r][c]),  correction = 2^(running_max - new_max),
//   scores[r][c] ← 2^(scores[r][c] - new_max),        running_sum = running_sum · correction + Σ_r.
// Starting from running_max = -inf and running_sum = 0 it is the plain (composed) softmax.
// block_max, when the caller has it (Q·Kᵀ's column_max), is max_r scores[r][c], and saves the
// pass that takes it; the dense layout takes its own.
// padded_columns is a multiple of W, or a divisor of it (the dense layout, keys_per_register).
// A +inf or NaN logit makes its column NaN (inf - inf), as in the oracle and torch.softmax.
template <class Arch>
inline void online_softmax_block(float* scores, int64_t rows, int64_t padded_columns,
                                 float* running_max, float* running_sum, float* correction,
                                 const float* block_max = nullptr) {
  constexpr int64_t W = xsimd::batch<float, Arch>::size;
  if (padded_columns < W) {
    online_softmax_dense<Arch>(scores, rows, padded_columns, running_max, running_sum, correction);
    return;
  }
  int64_t c = 0;
  for (; c + 2 * W <= padded_columns; c += 2 * W) {
    online_softmax_columns<Arch, 2>(scores + c, rows, padded_columns, running_max + c,
                                    running_sum + c, correction + c,
                                    block_max == nullptr ? nullptr : block_max + c);
  }
  if (c < padded_columns) {
    online_softmax_columns<Arch, 1>(scores + c, rows, padded_columns, running_max + c,
                                    running_sum + c, correction + c,
                                    block_max == nullptr ? nullptr : block_max + c);
  }
}

// Whether rows [0, rows) of `values` (row stride `stride`, `width` floats each) are all finite.
template <class Arch>
inline bool rows_are_finite(const float* values, int64_t stride, int64_t rows, int64_t width) {
  using Floats = xsimd::batch<float, Arch>;
  constexpr int64_t W = Floats::size;
  const int64_t full = width - width % W;
  // x - x is +0 (all bits clear) for a finite x and NaN for ±inf and NaN; OR-ing their bits
  // (latency 1, unlike a sum) leaves all bits clear only if every value was finite.
  Floats poison(0.0f);
  bool tail_finite = true;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = values + r * stride;
    for (int64_t n = 0; n < full; n += W) {
      const Floats x = Floats::load_unaligned(row + n);
      poison = poison | (x - x);
    }
    for (int64_t n = full; n < width; ++n) tail_finite = tail_finite && std::isfinite(row[n]);
  }
  // isnan, not != 0: the float != is an ordered compare on AVX (false for NaN), unlike SSE2's.
  return tail_finite && !xsimd::any(xsimd::isnan(poison));
}

// Where element (value n, column c) of an output accumulator lives: n · value_stride +
// c · column_stride. Key-major tiles accumulate Oᵀ ({columns, 1}); decoding tiles O ({1, width}).
struct AccumulatorLayout {
  int64_t value_stride;
  int64_t column_stride;
  float& at(float* accumulator, int64_t n, int64_t c) const {
    return accumulator[n * value_stride + c * column_stride];
  }
  float at(const float* accumulator, int64_t n, int64_t c) const {
    return accumulator[n * value_stride + c * column_stride];
  }
};

// accumulator(n, c) += Σ_r p[r][c] · values[r][n] for c < columns, skipping p = 0 so that a NaN or infinite value of
// a key that a column does not see cannot reach that column (0 · NaN would be NaN). The plain
// product's fallback, for key blocks holding non-finite values only.
inline void accumulate_visible_values(const float* probabilities, int64_t rows, int64_t padded_columns,
                                      int64_t columns, const float* values, int64_t stride,
                                      int64_t width, float* accumulator, AccumulatorLayout layout) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < columns; ++c) {
      const float p = probabilities[r * padded_columns + c];
      if (p == 0.0f) continue;
      for (int64_t n = 0; n < width; ++n) layout.at(accumulator, n, c) += p * values[r * stride + n];
    }
  }
}

// out = accumulator / sum for each real column, and lse = max + log(sum). A column that saw no
// key (sum 0) gets zeros and lse -inf; a NaN sum stays NaN in both. An Oᵀ accumulator (column
// stride 1) leaves through W × W transposes in registers; the rest element by element.
template <class Arch>
inline void write_normalized_outputs(const AttentionPlan& plan, const TileJob& job,
                                     const TileScratch& scratch, int64_t real_columns,
                                     AccumulatorLayout layout) {
  using Floats = xsimd::batch<float, Arch>;
  constexpr int64_t W = Floats::size;
  // Column c's output row: the caller's (f32), or a float row rounded into it at the end.
  const bool rounded = plan.out.dtype != DType::f32;
  const int64_t rounded_stride = (plan.value_dim + 15) / 16 * 16;
  const auto output_row = [&](int64_t c) {
    const ColumnInfo& column = scratch.columns[c];
    return rounded ? scratch.output_rows + c * rounded_stride
                   : static_cast<float*>(plan.out.row(job.batch, column.head, column.position));
  };
  const int64_t transposed_values = layout.column_stride == 1 ? plan.value_dim - plan.value_dim % W : 0;
  for (int64_t c0 = 0; c0 < real_columns && transposed_values > 0; c0 += W) {
    const int64_t count = std::min(W, real_columns - c0);
    // The block's columns that saw a key, their output rows and 1 / sum.
    float* outs[W] = {};
    float inverses[W];
    for (int64_t i = 0; i < count; ++i) {
      const float sum = scratch.running_sum[c0 + i];
      if (sum > 0.0f) outs[i] = output_row(c0 + i);
      // Only a positive sum is divided by: 1 / 0 would raise FE_DIVBYZERO.
      inverses[i] = sum > 0.0f ? 1.0f / sum : 0.0f;
    }
    for (int64_t n0 = 0; n0 < transposed_values; n0 += W) {
      Floats block[W];
      for (int64_t j = 0; j < W; ++j) {
        block[j] = Floats::load_aligned(scratch.accumulator + (n0 + j) * layout.value_stride + c0);
      }
      transpose_in_registers<Arch>(block);
      for (int64_t i = 0; i < count; ++i) {
        if (outs[i] != nullptr) (block[i] * Floats(inverses[i])).store_unaligned(outs[i] + n0);
      }
    }
  }
  for (int64_t c = 0; c < real_columns; ++c) {
    const ColumnInfo& column = scratch.columns[c];
    const float sum = scratch.running_sum[c];
    float* out = output_row(c);
    if (sum > 0.0f) {
      const float inverse = 1.0f / sum;
      for (int64_t n = transposed_values; n < plan.value_dim; ++n) {
        out[n] = layout.at(scratch.accumulator, n, c) * inverse;
      }
    } else {
      std::fill(out, out + plan.value_dim, sum == 0.0f ? 0.0f : sum);
    }
    if (plan.has_lse) {
      *plan.lse.row(job.batch, column.head, column.position) =
          natural_log_sum_exp(scratch.running_max[c], sum);
    }
    if (rounded) {
      narrow_row<Arch>(out, plan.value_dim, plan.out.row(job.batch, column.head, column.position),
                       plan.out.dtype);
    }
  }
}

// Writes the outputs of the real columns or, for a key chunk, stores the unnormalised state in
// its partial slot (laid out [value][column], columns_padded wide).
template <class Arch>
inline void finish_online_tile(const AttentionPlan& plan, const TileJob& job,
                               const TileScratch& scratch, const PartialSlots& partials,
                               int64_t real_columns, AccumulatorLayout layout) {
  if (job.partial < 0) {
    write_normalized_outputs<Arch>(plan, job, scratch, real_columns, layout);
    return;
  }
  const int64_t slot_columns = plan.columns_padded;
  float* accumulator = partials.accumulator + job.partial * plan.value_dim * slot_columns;
  for (int64_t n = 0; n < plan.value_dim; ++n) {
    for (int64_t c = 0; c < real_columns; ++c) {
      accumulator[n * slot_columns + c] = layout.at(scratch.accumulator, n, c);
    }
  }
  std::copy(scratch.running_max, scratch.running_max + real_columns,
            partials.max + job.partial * slot_columns);
  std::copy(scratch.running_sum, scratch.running_sum + real_columns,
            partials.sum + job.partial * slot_columns);
}

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE
