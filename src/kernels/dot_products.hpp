// Q·Kᵀ and P·V of the pair tile (pair_fused_tile_impl.hpp) with AVX512-BF16's VDPBF16PS: each
// instruction adds 16 sums of two bf16 products (exact in fp32) into 16 fp32 lanes, as AMX's
// tiles do 16 rows at a time. Register-blocked like the AVX-512 tile's micro-kernels:
//
// - Q·Kᵀ: a lane per query column. 6 keys × 4 registers of columns (64) a step of depth: each key's
//   pair of elements broadcast from its row, read in place, against the packed queries' row of
//   pairs (24 accumulators, 4 loads and 6 broadcasts per 24 instructions).
// - P·V: a lane per value element. 6 columns × 4 registers of value_dim (64): each column's pair
//   of weights broadcast, against the paired values' row.
//
// The results are those of the AMX tiles' layouts (pair_tiles.hpp), so the tile around them is
// the same code. On Intel cores VDPBF16PS runs at half the FMAs' rate (docs/precision-performance.md),
// which is why the avx512bf16 ISA is the default only on AMD (isa/registry.hpp).
#pragma once

#include "isa/registry.hpp"

#if defined(SIMDATTN_AVX512_BF16_UNIT)

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include <xsimd/xsimd.hpp>

#include "kernels/head_rows.hpp"
#include "kernels/isa_namespace.hpp"
#include "kernels/online_softmax.hpp"
#include "kernels/pair_tiles.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

namespace bf16dot {

// Keys (Q·Kᵀ) or query columns (P·V) a micro-kernel step covers; registers of 16 lanes across.
inline constexpr int kGroupRows = 6;
inline constexpr int kWideRegisters = 4;

// The 32-bit word (a pair of bf16) at `pair`, broadcast to every lane. Rows of a bf16 cache need
// only be 2-byte aligned, so the word is copied rather than dereferenced.
inline __m512i broadcast_pair(const uint16_t* pair) {
  uint32_t word;
  std::memcpy(&word, pair, sizeof word);
  return _mm512_set1_epi32(static_cast<int>(word));
}

inline __m512 add_pair_products(__m512 sums, __m512i a, __m512i b) {
  return _mm512_dpbf16_ps(sums, (__m512bh)a, (__m512bh)b);
}

// Scores of up to kGroupRows keys (rows past `stored_rows` are computed from the group's last
// real key and not stored) by Registers × 16 columns from c0, summed over `pairs` pairs of depth;
// scaled (Scale) and their max down the stored rows taken into block_max (when not null), as the
// AMX tiles' results are.
template <bool Scale, int Registers>
inline void key_group_products(const uint16_t* const* keys, int64_t stored_rows, int64_t pairs,
                               const uint32_t* packed_queries, int64_t padded_columns, int64_t c0,
                               __m512 logit_scale, float* scores, float* block_max) {
  __m512 sums[kGroupRows][Registers];
  for (int r = 0; r < kGroupRows; ++r) {
    for (int v = 0; v < Registers; ++v) sums[r][v] = _mm512_setzero_ps();
  }
  for (int64_t p = 0; p < pairs; ++p) {
    const uint32_t* queries = packed_queries + p * padded_columns + c0;
    __m512i column_pairs[Registers];
    for (int v = 0; v < Registers; ++v) column_pairs[v] = _mm512_load_si512(queries + 16 * v);
    for (int r = 0; r < kGroupRows; ++r) {
      const __m512i key_pair = broadcast_pair(keys[r] + 2 * p);
      for (int v = 0; v < Registers; ++v) sums[r][v] = add_pair_products(sums[r][v], key_pair, column_pairs[v]);
    }
  }
  __m512 group_max[Registers];
  for (int v = 0; v < Registers; ++v) group_max[v] = _mm512_set1_ps(kMinusInfinity);
  for (int r = 0; r < kGroupRows; ++r) {
    if (r >= stored_rows) break;
    for (int v = 0; v < Registers; ++v) {
      const __m512 score = Scale ? _mm512_mul_ps(sums[r][v], logit_scale) : sums[r][v];
      _mm512_store_ps(scores + r * padded_columns + c0 + 16 * v, score);
      group_max[v] = _mm512_max_ps(group_max[v], score);
    }
  }
  if (block_max != nullptr) {
    for (int v = 0; v < Registers; ++v) {
      float* column_max = block_max + c0 + 16 * v;
      _mm512_store_ps(column_max, _mm512_max_ps(_mm512_load_ps(column_max), group_max[v]));
    }
  }
}

// scores[r][c] = logit_scale · (K[first_key + r] · q[c]) (without Scale, the unscaled K · q) for
// the block's rows, the products summed in fp32; block_max[c] (when not null) = max_r
// scores[r][c] over the block's rows. K's rows are read in place, wherever they lie.
template <class Arch, bool Scale>
inline void block_products(const RowSource<Arch>& key_source, int64_t first_key, int64_t rows, int64_t head_dim,
                           const uint32_t* packed_queries, int64_t padded_columns,
                           xsimd::batch<float, Arch> logit_scale, float* scores, float* block_max) {
  if (block_max != nullptr) std::fill(block_max, block_max + padded_columns, kMinusInfinity);
  const int64_t pairs = head_dim / 2;
  for (int64_t k0 = 0; k0 < rows; k0 += kGroupRows) {
    const int64_t stored_rows = std::min<int64_t>(kGroupRows, rows - k0);
    const uint16_t* keys[kGroupRows];
    for (int r = 0; r < kGroupRows; ++r) {
      keys[r] = reinterpret_cast<const uint16_t*>(
          key_source.row_address(first_key + k0 + std::min<int64_t>(r, stored_rows - 1)));
    }
    float* group_scores = scores + k0 * padded_columns;
    int64_t c0 = 0;
    for (; c0 + 16 * kWideRegisters <= padded_columns; c0 += 16 * kWideRegisters) {
      key_group_products<Scale, kWideRegisters>(keys, stored_rows, pairs, packed_queries, padded_columns, c0,
                                                logit_scale, group_scores, block_max);
    }
    if (c0 < padded_columns) {  // 32 columns left: padded_columns is a multiple of 32
      key_group_products<Scale, 2>(keys, stored_rows, pairs, packed_queries, padded_columns, c0, logit_scale,
                                   group_scores, block_max);
    }
  }
}

// O[c][n0 + n] += Σ_r weights[c][r] · V[r][n0 + n] for Columns columns from the group's first
// (`weights` and `out` its rows) and Registers × 16 value elements.
template <int Columns, int Registers>
inline void column_group_products(const uint16_t* weights, int64_t key_rows, const uint16_t* values,
                                  int64_t value_dim, int64_t n0, float* out) {
  __m512 sums[Columns][Registers];
  for (int c = 0; c < Columns; ++c) {
    for (int v = 0; v < Registers; ++v) sums[c][v] = _mm512_loadu_ps(out + c * value_dim + 16 * v);
  }
  for (int64_t p = 0; 2 * p < key_rows; ++p) {
    const uint16_t* value_pairs = values + (p * value_dim + n0) * 2;
    __m512i element_pairs[Registers];
    for (int v = 0; v < Registers; ++v) element_pairs[v] = _mm512_loadu_si512(value_pairs + 32 * v);
    for (int c = 0; c < Columns; ++c) {
      const __m512i weight_pair = broadcast_pair(weights + c * key_rows + 2 * p);
      for (int v = 0; v < Registers; ++v) sums[c][v] = add_pair_products(sums[c][v], weight_pair, element_pairs[v]);
    }
  }
  for (int c = 0; c < Columns; ++c) {
    for (int v = 0; v < Registers; ++v) _mm512_storeu_ps(out + c * value_dim + 16 * v, sums[c][v]);
  }
}

// A group of Columns columns over all of value_dim (a multiple of 16), 4, 2 or 1 registers a step.
template <int Columns>
inline void column_group(const uint16_t* weights, int64_t key_rows, const uint16_t* values, int64_t value_dim,
                         float* out) {
  int64_t n0 = 0;
  for (; n0 + 64 <= value_dim; n0 += 64) {
    column_group_products<Columns, 4>(weights, key_rows, values, value_dim, n0, out + n0);
  }
  if (n0 + 32 <= value_dim) {
    column_group_products<Columns, 2>(weights, key_rows, values, value_dim, n0, out + n0);
    n0 += 32;
  }
  if (n0 < value_dim) column_group_products<Columns, 1>(weights, key_rows, values, value_dim, n0, out + n0);
}

// O[c][n] += Σ_r weights[c][r] · V[r][n] over key_rows keys, O laid out [column][value_dim].
inline void accumulate_products(const uint16_t* weights, const uint16_t* values, int64_t key_rows,
                                int64_t padded_columns, int64_t value_dim, float* accumulator) {
  int64_t c0 = 0;
  for (; c0 + kGroupRows <= padded_columns; c0 += kGroupRows) {
    column_group<kGroupRows>(weights + c0 * key_rows, key_rows, values, value_dim, accumulator + c0 * value_dim);
  }
  // padded_columns is a multiple of 32, so 2 or 4 columns are left, or none.
  const uint16_t* tail_weights = weights + c0 * key_rows;
  float* tail_out = accumulator + c0 * value_dim;
  if (padded_columns - c0 == 4) column_group<4>(tail_weights, key_rows, values, value_dim, tail_out);
  if (padded_columns - c0 == 2) column_group<2>(tail_weights, key_rows, values, value_dim, tail_out);
}

}  // namespace bf16dot

// The pair tile's products with VDPBF16PS: no state to hold.
struct DotProducts {
  struct Session {};
  template <class Arch, bool Scale>
  static void block_products(const RowSource<Arch>& keys, int64_t first_key, int64_t rows, int64_t head_dim,
                             const uint32_t* packed_queries, int64_t padded_columns,
                             xsimd::batch<float, Arch> logit_scale, uint16_t* /*staging*/, float* scores,
                             float* block_max) {
    bf16dot::block_products<Arch, Scale>(keys, first_key, rows, head_dim, packed_queries, padded_columns,
                                         logit_scale, scores, block_max);
  }
  static void accumulate_products(const uint16_t* weights, const uint16_t* values, int64_t key_rows,
                                  int64_t padded_columns, int64_t value_dim, float* accumulator) {
    bf16dot::accumulate_products(weights, values, key_rows, padded_columns, value_dim, accumulator);
  }
};

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE

#endif
