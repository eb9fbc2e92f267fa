// The fused tile (fused_tile_impl.hpp) with both products on AMX tiles, for bf16 q, k and v
// (uses_amx_tiles, amx_tiles.hpp). The tile is the AVX-512 one in every other respect: the same
// work items, key blocks, logit transforms, online softmax and outputs; only Q·Kᵀ and P·V move to
// TDPBF16PS, which multiplies bf16 pairs exactly and accumulates in fp32.
//
// - Q·Kᵀ, key-major as the AVX-512 tile: scores[key][column] += K[key][d..d+31] ·
//   Qᵀ[d..d+31][column]. K's rows load as tiles straight from the caller's cache (16 keys of 32
//   elements, any row stride); Qᵀ is packed once per tile in pairs of depth ([D/2][columns][2]),
//   unscaled, so the scores come out as the exact products' fp32 sums. The logit scale (times
//   log2 e), which the AVX-512 tile's packed queries carry, rides in the softmax's FMA where
//   nothing reads the logits before it (run_amx_fused_tile), and is applied as each group of
//   results leaves the tiles, still in L1, elsewhere; that pass also takes the block's max.
// - P·V, column-major: O[column][n] += Pᵀ[column][key..key+31] · V[key..key+31][n]. The softmax
//   writes the weights rounded to bf16 (RNE) and transposed from the key-major scores, and V's
//   rows are interleaved in pairs of keys; O is the accumulator, laid out [column][value_dim]
//   (the decoding tiles' layout, AccumulatorLayout{1, value_dim}).
//
// Accuracy: beyond the AVX-512 tile's roundings, the weights are rounded to bf16, relative 2⁻⁸
// each, from a 2^x within 5·10⁻⁶ relative (exp2_approx's Coarse form), so at most
// (2⁻⁸ + 10⁻⁵) · V more on an output (the sums divided by stay fp32); the README's Guarantees add
// it for this path. Tiles read denormal bf16 inputs as zero (below 2⁻¹²⁶: no
// effect within the bound on any logit or weight the tests or a model produce).
#pragma once

#include "isa/registry.hpp"

#if defined(SIMDATTN_AMX_BF16_UNIT)

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

#include <xsimd/xsimd.hpp>

#include "kernels/amx_tiles.hpp"
#include "kernels/head_rows.hpp"
#include "kernels/isa_namespace.hpp"
#include "kernels/logit_transforms.hpp"
#include "kernels/online_softmax.hpp"
#include "kernels/tile_columns.hpp"
#include "kernels/tile_outputs.hpp"
#include "kernels/transpose.hpp"
#include "kernels/value_accumulation.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

namespace amx {

// Tile registers: four results (2 × 2 blocks of 16 × 16), two left and two right operands.
// Macros, not constants: GCC's tile intrinsics paste their register number into the assembly
// text, so it must be a literal after macro expansion. #undef'd at the end of this header.
#define SIMDATTN_TILE_C00 0
#define SIMDATTN_TILE_C01 1
#define SIMDATTN_TILE_C10 2
#define SIMDATTN_TILE_C11 3
#define SIMDATTN_TILE_A0 4
#define SIMDATTN_TILE_A1 5
#define SIMDATTN_TILE_B0 6
#define SIMDATTN_TILE_B1 7

// The LDTILECFG operand, palette 1: every tile 16 rows of 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t row_bytes[16];
  uint8_t rows[16];
};

// Tile state is per thread: each tile configures on entry and releases on exit, so that a thread
// leaves AMX's state as it found it (an OpenMP thread may run other code between jobs).
class TileSession {
 public:
  TileSession() {
    TileConfig config;
    std::memset(&config, 0, sizeof config);
    config.palette = 1;
    for (int t = 0; t < 8; ++t) {
      config.row_bytes[t] = 64;
      config.rows[t] = static_cast<uint8_t>(kAmxRows);
    }
    _tile_loadconfig(&config);
  }
  ~TileSession() { _tile_release(); }
  TileSession(const TileSession&) = delete;
  TileSession& operator=(const TileSession&) = delete;
};

// packed[p][c] (32-bit words) = q[column c][2p .. 2p + 1]: the tile's queries transposed in pairs
// of depth, the right operand of Q·Kᵀ. Padded columns are 0. A pair is a 32-bit word, so the
// transpose is the AVX-512 tile's 16 × 16 float transpose on the words' bits.
template <class Arch>
inline void pack_query_pairs(const TileProblem& problem, const TileJob& job, const ColumnInfo* columns,
                             int64_t real_columns, int64_t padded_columns, uint32_t* packed) {
  using Floats = xsimd::batch<float, Arch>;
  constexpr int64_t W = Floats::size;
  static_assert(W == kAmxRows, "a 16 × 16 word transpose");
  const int64_t pairs = problem.head_dim / 2;
  for (int64_t c0 = 0; c0 < padded_columns; c0 += W) {
    const float* rows[W] = {};
    for (int64_t j = 0; j < W && c0 + j < real_columns; ++j) {
      rows[j] = static_cast<const float*>(
          problem.q.row(job.batch, columns[c0 + j].head, columns[c0 + j].position));
    }
    for (int64_t p0 = 0; p0 < pairs; p0 += W) {
      Floats block[W];
      for (int64_t j = 0; j < W; ++j) {
        block[j] = rows[j] != nullptr ? Floats::load_unaligned(rows[j] + p0) : Floats(0.0f);
      }
      transpose_in_registers<Arch>(block);
      for (int64_t i = 0; i < W; ++i) {
        block[i].store_aligned(reinterpret_cast<float*>(packed + (p0 + i) * padded_columns + c0));
      }
    }
  }
}

// The 16 key rows from `first` of the block as a tile's memory: in place when they lie one stride
// apart, else copied (rows past `count` zero) into `staging`, 16 rows of head_dim.
template <class Arch>
inline const uint16_t* key_group(const RowSource<Arch>& keys, int64_t first, int64_t count,
                                 int64_t head_dim, uint16_t* staging, int64_t* row_bytes) {
  if (count >= kAmxRows && keys.contiguous_rows(first) >= kAmxRows) {
    *row_bytes = keys.stride * 2;
    return reinterpret_cast<const uint16_t*>(keys.row_address(first));
  }
  for (int64_t r = 0; r < kAmxRows; ++r) {
    uint16_t* row = staging + r * head_dim;
    if (r < count) {
      std::memcpy(row, keys.row_address(first + r), static_cast<size_t>(head_dim) * 2);
    } else {
      std::memset(row, 0, static_cast<size_t>(head_dim) * 2);
    }
  }
  *row_bytes = head_dim * 2;
  return staging;
}

// With Scale, the logit scale on the 2 × 2 tiles of results just stored (keys k0.. of the block,
// columns c0..c0 + 31), while they are in L1; either way their max down the block's rows into
// block_max (when not null). Rows past `rows` are left as they are: they hold zeros' products,
// never read.
template <class Arch, bool Scale>
inline void finish_stored_products(float* scores, int64_t k0, int64_t rows, int64_t c0, int64_t padded_columns,
                                   xsimd::batch<float, Arch> logit_scale, float* block_max) {
  if (!Scale && block_max == nullptr) return;
  using Floats = xsimd::batch<float, Arch>;
  constexpr int64_t W = Floats::size;
  static_assert(W == kAmxRows, "a register holds a tile row");
  const int64_t end = std::min(k0 + 2 * kAmxRows, rows);
  Floats max0(kMinusInfinity), max1(kMinusInfinity);
  for (int64_t r = k0; r < end; ++r) {
    float* row = scores + r * padded_columns + c0;
    Floats low = Floats::load_aligned(row), high = Floats::load_aligned(row + W);
    if (Scale) {
      low *= logit_scale;
      high *= logit_scale;
      low.store_aligned(row);
      high.store_aligned(row + W);
    }
    max0 = xsimd::max(max0, low);
    max1 = xsimd::max(max1, high);
  }
  if (block_max != nullptr) {
    xsimd::max(Floats::load_aligned(block_max + c0), max0).store_aligned(block_max + c0);
    xsimd::max(Floats::load_aligned(block_max + c0 + W), max1).store_aligned(block_max + c0 + W);
  }
}

// scores[r][c] = logit_scale · (K[first_key + r] · q[c]) (without Scale, the unscaled K · q) for
// the block's rows rounded up to 32 (rows past `rows` hold zeros' unscaled products and are never
// read), the products summed in fp32 on the tiles; block_max[c] (when not null) = max_r
// scores[r][c] over the block's rows.
template <class Arch, bool Scale>
inline void block_products(const RowSource<Arch>& keys, int64_t first_key, int64_t rows,
                           int64_t head_dim, const uint32_t* packed_queries, int64_t padded_columns,
                           xsimd::batch<float, Arch> logit_scale, uint16_t* staging, float* scores,
                           float* block_max) {
  if (block_max != nullptr) std::fill(block_max, block_max + padded_columns, kMinusInfinity);
  const int64_t query_row_bytes = padded_columns * 4;
  const int64_t score_row_bytes = padded_columns * 4;
  bool has_previous = false;
  int64_t previous_k0 = 0, previous_c0 = 0;
  for (int64_t k0 = 0; k0 < rows; k0 += 2 * kAmxRows) {
    int64_t stride0 = 0, stride1 = 0;
    const uint16_t* group0 = key_group(keys, first_key + k0, rows - k0, head_dim, staging, &stride0);
    const bool two = rows - k0 > kAmxRows;
    // The second group never needs the staging rows the first one took: only the block's last
    // group can be short, and one pair of groups is staged at most when both cross a page.
    const uint16_t* group1 = group0;
    if (two) {
      group1 = key_group(keys, first_key + k0 + kAmxRows, rows - k0 - kAmxRows, head_dim,
                         group0 == staging ? staging + kAmxRows * head_dim : staging, &stride1);
    }
    for (int64_t c0 = 0; c0 < padded_columns; c0 += 2 * kAmxRows) {
      _tile_zero(SIMDATTN_TILE_C00);
      _tile_zero(SIMDATTN_TILE_C01);
      _tile_zero(SIMDATTN_TILE_C10);
      _tile_zero(SIMDATTN_TILE_C11);
      for (int64_t d0 = 0; d0 < head_dim; d0 += kAmxDepth) {
        const uint32_t* queries = packed_queries + (d0 / 2) * padded_columns + c0;
        _tile_loadd(SIMDATTN_TILE_B0, queries, query_row_bytes);
        _tile_loadd(SIMDATTN_TILE_B1, queries + kAmxRows, query_row_bytes);
        _tile_loadd(SIMDATTN_TILE_A0, group0 + d0, stride0);
        _tile_dpbf16ps(SIMDATTN_TILE_C00, SIMDATTN_TILE_A0, SIMDATTN_TILE_B0);
        _tile_dpbf16ps(SIMDATTN_TILE_C01, SIMDATTN_TILE_A0, SIMDATTN_TILE_B1);
        if (two) {
          _tile_loadd(SIMDATTN_TILE_A1, group1 + d0, stride1);
          _tile_dpbf16ps(SIMDATTN_TILE_C10, SIMDATTN_TILE_A1, SIMDATTN_TILE_B0);
          _tile_dpbf16ps(SIMDATTN_TILE_C11, SIMDATTN_TILE_A1, SIMDATTN_TILE_B1);
        }
      }
      float* out = scores + k0 * padded_columns + c0;
      _tile_stored(SIMDATTN_TILE_C00, out, score_row_bytes);
      _tile_stored(SIMDATTN_TILE_C01, out + kAmxRows, score_row_bytes);
      if (two) {
        _tile_stored(SIMDATTN_TILE_C10, out + kAmxRows * padded_columns, score_row_bytes);
        _tile_stored(SIMDATTN_TILE_C11, out + kAmxRows * padded_columns + kAmxRows, score_row_bytes);
      }
      // The group stored before this one: its stores have had this group's products to land in
      // L1, where loading a tile's results right after storing them waits for the stores.
      if (has_previous) {
        finish_stored_products<Arch, Scale>(scores, previous_k0, rows, previous_c0, padded_columns, logit_scale,
                                            block_max);
      }
      has_previous = true;
      previous_k0 = k0;
      previous_c0 = c0;
    }
  }
  if (has_previous) {
    finish_stored_products<Arch, Scale>(scores, previous_k0, rows, previous_c0, padded_columns, logit_scale,
                                        block_max);
  }
}

// The online softmax of a key block (online_softmax_block's update: the same max and row-by-row
// sums, the exponentials from exp2_approx's Coarse form, as they are rounded to bf16 next) with
// the weights written straight as P·V's left operand instead of back into the scores:
// weights[c][r] = bf16(2^(scores[r][c] - new_max[c])) for r < rows, and 0 for the keys from
// `rows` to key_rows (amx_key_rows(rows)). The exponentials round to nearest even and transpose
// in registers, so the block's fp32 exponentials never return to memory. block_max as for
// online_softmax_block.
// With Scale, the scores are unscaled products and block_max theirs: the logits are then
// logit_scale · scores (logit_scale > 0, so the max of the logits is logit_scale times the
// scores' max, exactly), and each exponent is one FMA, scores · logit_scale - new_max.
template <class Arch, bool Scale>
inline void softmax_to_weights(const float* scores, int64_t rows, int64_t key_rows, int64_t padded_columns,
                               xsimd::batch<float, Arch> logit_scale, float* running_max, float* running_sum,
                               float* correction, const float* block_max, uint16_t* weights) {
  using Floats = xsimd::batch<float, Arch>;
  constexpr int64_t W = Floats::size;
  static_assert(2 * W == kAmxDepth, "two rows of exponentials make a register of bf16 pairs");
  const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                              23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  for (int64_t c0 = 0; c0 < padded_columns; c0 += W) {
    Floats column_max;
    if (block_max != nullptr) {
      column_max = Floats::load_aligned(block_max + c0);
    } else {
      max_down_rows<Arch, 1>(scores + c0, rows, padded_columns, &column_max);
    }
    if (Scale) column_max *= logit_scale;
    const Floats old_max = Floats::load_aligned(running_max + c0);
    const Floats new_max = xsimd::max(old_max, column_max);
    const Floats shift = exp_shift<Arch>(new_max);
    new_max.store_aligned(running_max + c0);
    const Floats column_correction = exp2_approx<Arch>(old_max - shift);
    column_correction.store_aligned(correction + c0);
    Floats sum(0.0f);
    // 32 keys at a time, a tile row's depth: two rows' exponentials round into one register of
    // bf16 and interleave into 16 words (key 2j in the low half, 2j + 1 in the high, per column),
    // and one 16 × 16 word transpose makes each column's 32 keys, one 64-byte row of the tile.
    const auto exponentials = [&](int64_t r) {
      if (r >= rows) return Floats(0.0f);
      const Floats score = Floats::load_aligned(scores + r * padded_columns + c0);
      const Floats e =
          exp2_approx<Arch, true>(Scale ? multiply_add<Arch>(score, logit_scale, -shift) : score - shift);
      sum += e;
      return e;
    };
    for (int64_t r0 = 0; r0 < key_rows; r0 += kAmxDepth) {
      Floats words[W];
      for (int64_t j = 0; j < W; ++j) {
        const Floats even = exponentials(r0 + 2 * j);
        const Floats odd = exponentials(r0 + 2 * j + 1);
        // Elements 0-15: the even row's columns, 16-31: the odd row's (VCVTNE2PS2BF16, RNE).
        const __m512i rounded = (__m512i)_mm512_cvtne2ps_pbh(odd, even);
        words[j] = _mm512_castsi512_ps(_mm512_permutexvar_epi16(interleave, rounded));
      }
      transpose_in_registers<Arch>(words);
      for (int64_t i = 0; i < W; ++i) {
        _mm512_storeu_ps(weights + (c0 + i) * key_rows + r0, words[i]);
      }
    }
    multiply_add<Arch>(Floats::load_aligned(running_sum + c0), column_correction, sum)
        .store_aligned(running_sum + c0);
  }
}

// values[p][n][2] = (V[first + 2p][n], V[first + 2p + 1][n]) for 2p < key_rows, zeros for keys
// past `rows`: the right operand of P·V. Returns whether every element read is finite (a bf16
// whose exponent bits are all set is ±inf or NaN).
template <class Arch>
inline bool pack_value_pairs(const RowSource<Arch>& source, int64_t first, int64_t rows, int64_t key_rows,
                             int64_t value_dim, uint16_t* values) {
  const __m512i low_index = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8,
                                             39, 7, 38, 6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
  const __m512i high_index = _mm512_add_epi16(low_index, _mm512_set1_epi16(16));
  const __m512i exponent = _mm512_set1_epi16(0x7f80);
  __mmask32 non_finite = 0;
  for (int64_t p = 0; 2 * p < key_rows; ++p) {
    const int64_t r = 2 * p;
    const uint16_t* even = r < rows ? reinterpret_cast<const uint16_t*>(source.row_address(first + r)) : nullptr;
    const uint16_t* odd = r + 1 < rows ? reinterpret_cast<const uint16_t*>(source.row_address(first + r + 1)) : nullptr;
    uint16_t* out = values + p * value_dim * 2;
    for (int64_t n0 = 0; n0 < value_dim; n0 += 32) {
      const __mmask32 lanes = value_dim - n0 >= 32 ? ~__mmask32{0} : __mmask32{0xffff};
      const __m512i a = even != nullptr ? _mm512_maskz_loadu_epi16(lanes, even + n0) : _mm512_setzero_si512();
      const __m512i b = odd != nullptr ? _mm512_maskz_loadu_epi16(lanes, odd + n0) : _mm512_setzero_si512();
      non_finite |= _mm512_cmpeq_epi16_mask(_mm512_and_si512(a, exponent), exponent);
      non_finite |= _mm512_cmpeq_epi16_mask(_mm512_and_si512(b, exponent), exponent);
      _mm512_storeu_si512(out + 2 * n0, _mm512_permutex2var_epi16(a, low_index, b));
      if (value_dim - n0 >= 32) _mm512_storeu_si512(out + 2 * n0 + 32, _mm512_permutex2var_epi16(a, high_index, b));
    }
  }
  return non_finite == 0;
}

// O[c][n] += Σ_r weights[c][r] · V[r][n] over key_rows keys, O laid out [column][value_dim].
inline void accumulate_products(const uint16_t* weights, const uint16_t* values, int64_t key_rows,
                                int64_t padded_columns, int64_t value_dim, float* accumulator) {
  const int64_t weight_row_bytes = key_rows * 2, value_row_bytes = value_dim * 4;
  const int64_t output_row_bytes = value_dim * 4;
  for (int64_t c0 = 0; c0 < padded_columns; c0 += 2 * kAmxRows) {
    for (int64_t n0 = 0; n0 < value_dim; n0 += 2 * kAmxRows) {
      const bool two = value_dim - n0 > kAmxRows;
      float* out = accumulator + c0 * value_dim + n0;
      _tile_loadd(SIMDATTN_TILE_C00, out, output_row_bytes);
      _tile_loadd(SIMDATTN_TILE_C10, out + kAmxRows * value_dim, output_row_bytes);
      if (two) {
        _tile_loadd(SIMDATTN_TILE_C01, out + kAmxRows, output_row_bytes);
        _tile_loadd(SIMDATTN_TILE_C11, out + kAmxRows * value_dim + kAmxRows, output_row_bytes);
      }
      for (int64_t r0 = 0; r0 < key_rows; r0 += kAmxDepth) {
        _tile_loadd(SIMDATTN_TILE_A0, weights + c0 * key_rows + r0, weight_row_bytes);
        _tile_loadd(SIMDATTN_TILE_A1, weights + (c0 + kAmxRows) * key_rows + r0, weight_row_bytes);
        const uint16_t* pairs = values + (r0 / 2) * value_dim * 2 + n0 * 2;
        _tile_loadd(SIMDATTN_TILE_B0, pairs, value_row_bytes);
        _tile_dpbf16ps(SIMDATTN_TILE_C00, SIMDATTN_TILE_A0, SIMDATTN_TILE_B0);
        _tile_dpbf16ps(SIMDATTN_TILE_C10, SIMDATTN_TILE_A1, SIMDATTN_TILE_B0);
        if (two) {
          _tile_loadd(SIMDATTN_TILE_B1, pairs + 2 * kAmxRows, value_row_bytes);
          _tile_dpbf16ps(SIMDATTN_TILE_C01, SIMDATTN_TILE_A0, SIMDATTN_TILE_B1);
          _tile_dpbf16ps(SIMDATTN_TILE_C11, SIMDATTN_TILE_A1, SIMDATTN_TILE_B1);
        }
      }
      _tile_stored(SIMDATTN_TILE_C00, out, output_row_bytes);
      _tile_stored(SIMDATTN_TILE_C10, out + kAmxRows * value_dim, output_row_bytes);
      if (two) {
        _tile_stored(SIMDATTN_TILE_C01, out + kAmxRows, output_row_bytes);
        _tile_stored(SIMDATTN_TILE_C11, out + kAmxRows * value_dim + kAmxRows, output_row_bytes);
      }
    }
  }
}

}  // namespace amx

// ScaleInSoftmax: the scores stay unscaled products and the softmax scales them in its FMA
// (softmax_to_weights), sparing a pass over them; only where nothing between the products and the
// softmax reads the logits' values (no soft-cap, ALiBi or mask: hiding a key by -inf is the same
// either way) and the scale is positive, so that the max commutes with it.
template <class Arch, bool ScaleInSoftmax>
inline void run_amx_fused_tile_scaled(const TileProblem& problem, const TileJob& job, TileScratch& scratch,
                                      const PartialSlots& partials) {
  using Floats = xsimd::batch<float, Arch>;
  constexpr int64_t W = Floats::size;
  const TileColumns tile = start_tile(problem, job, scratch, 2 * kAmxRows);
  const int64_t real_columns = tile.real, padded_columns = tile.padded;
  const KeyRange keys = tile.keys;
  const KeyRange hole = keys_hidden_from_tile(problem, scratch, real_columns, keys);
  const int64_t value_dim = problem.value_dim;
  const AccumulatorLayout layout{1, value_dim};
  uint32_t* packed_queries = reinterpret_cast<uint32_t*>(scratch.packed_queries);
  amx::pack_query_pairs<Arch>(problem, job, scratch.columns, real_columns, padded_columns, packed_queries);
  prepare_alibi(problem, job, scratch, real_columns, padded_columns);
  std::fill(scratch.running_max, scratch.running_max + padded_columns, kMinusInfinity);
  std::fill(scratch.running_sum, scratch.running_sum + padded_columns, 0.0f);
  std::fill(scratch.accumulator, scratch.accumulator + padded_columns * value_dim, 0.0f);
  seed_sink_logits(problem, job, scratch, real_columns);
  const RowSource<Arch> key_rows = key_source<Arch>(problem, job, scratch);
  const RowSource<Arch> value_rows = value_source<Arch>(problem, job, scratch);
  const Floats logit_scale(base2_logit_scale(problem));
  // As on the AVX-512 tile: a block every column sees wholly keeps its logits as computed, so the
  // products hand the softmax the block's max.
  const bool block_max_from_products = logits_as_computed(problem);
  const amx::TileSession session;
  for (int64_t first_key = keys.begin, rows = 0; first_key < keys.end;
       first_key = next_key_block(hole, first_key + rows)) {
    rows = key_block_rows(keys, hole, first_key, problem.key_block);
    float* block_max = block_max_from_products && every_column_sees(scratch, real_columns, first_key, rows)
                           ? scratch.block_max
                           : nullptr;
    amx::block_products<Arch, !ScaleInSoftmax>(key_rows, first_key, rows, problem.head_dim, packed_queries,
                                               padded_columns, logit_scale, scratch.tile_keys, scratch.scores,
                                               block_max);
    const bool some_key_hidden =
        transform_logits<Arch>(problem, job, scratch, real_columns, padded_columns, first_key, rows);
    const int64_t key_rows_padded = amx_key_rows(rows);
    const bool finite = amx::pack_value_pairs(value_rows, first_key, rows, key_rows_padded, value_dim,
                                              scratch.tile_values);
    // A key some column does not see holding inf or NaN must not reach that column as 0 · inf:
    // then the weights stay fp32 in the scores, and only the visible keys are added.
    const bool on_tiles = finite || !some_key_hidden;
    if (on_tiles) {
      amx::softmax_to_weights<Arch, ScaleInSoftmax>(scratch.scores, rows, key_rows_padded, padded_columns,
                                                    logit_scale, scratch.running_max, scratch.running_sum,
                                                    scratch.correction, block_max, scratch.tile_weights);
    } else {
      if (ScaleInSoftmax) {
        for (int64_t i = 0; i < rows * padded_columns; i += W) {
          (Floats::load_aligned(scratch.scores + i) * logit_scale).store_aligned(scratch.scores + i);
        }
      }
      online_softmax_block<Arch>(scratch.scores, rows, padded_columns, scratch.running_max,
                                 scratch.running_sum, scratch.correction, ScaleInSoftmax ? nullptr : block_max);
    }
    // What was accumulated under the previous max is rescaled to the new one; a column whose max
    // held (correction exactly 1, most columns after the first blocks) keeps its row as it is.
    for (int64_t c = 0; c < padded_columns; ++c) {
      if (scratch.correction[c] == 1.0f) continue;
      float* row = scratch.accumulator + c * value_dim;
      const Floats correction(scratch.correction[c]);
      for (int64_t n = 0; n < value_dim; n += W) {
        (Floats::load_unaligned(row + n) * correction).store_unaligned(row + n);
      }
    }
    if (on_tiles) {
      amx::accumulate_products(scratch.tile_weights, scratch.tile_values, key_rows_padded,
                               padded_columns, value_dim, scratch.accumulator);
    } else {
      const RowBlock block = value_rows.rows(first_key, rows);
      accumulate_visible_values(scratch.scores, rows, padded_columns, real_columns, block.first,
                                block.stride, value_dim, scratch.accumulator, layout);
    }
  }
  finish_online_tile<Arch>(problem, job, scratch, partials, real_columns, layout);
}

template <class Arch>
inline void run_amx_fused_tile(const TileProblem& problem, const TileJob& job, TileScratch& scratch,
                               const PartialSlots& partials) {
  const float scale = base2_logit_scale(problem);
  if (logits_as_computed(problem) && scale > 0.0f && scale < std::numeric_limits<float>::infinity()) {
    run_amx_fused_tile_scaled<Arch, true>(problem, job, scratch, partials);
  } else {
    run_amx_fused_tile_scaled<Arch, false>(problem, job, scratch, partials);
  }
}

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE

#undef SIMDATTN_TILE_C00
#undef SIMDATTN_TILE_C01
#undef SIMDATTN_TILE_C10
#undef SIMDATTN_TILE_C11
#undef SIMDATTN_TILE_A0
#undef SIMDATTN_TILE_A1
#undef SIMDATTN_TILE_B0
#undef SIMDATTN_TILE_B1

#endif
