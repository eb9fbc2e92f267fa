// The steps of the pair tile (pair_fused_tile_impl.hpp) that do not depend on which instruction
// multiplies the pairs: packing the queries in pairs of depth, the softmax that writes the
// weights rounded to bf16 and transposed, and pairing V's rows. AVX-512 (BW) and AVX512-BF16's
// conversions only, so the avx512bf16 and amx units share them.
#pragma once

#include "isa/registry.hpp"

#if defined(SIMDATTN_AVX512_BF16_UNIT)

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

#include <xsimd/xsimd.hpp>

#include "kernels/head_rows.hpp"
#include "kernels/isa_namespace.hpp"
#include "kernels/online_softmax.hpp"
#include "kernels/pair_tiles.hpp"
#include "kernels/tile_columns.hpp"
#include "kernels/transpose.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

namespace pairs {

// packed[p][c] (32-bit words) = q[column c][2p .. 2p + 1]: the tile's queries transposed in pairs
// of depth, the right operand of Q·Kᵀ. Padded columns are 0. A pair is a 32-bit word, so the
// transpose is the AVX-512 tile's 16 × 16 float transpose on the words' bits.
template <class Arch>
inline void pack_query_pairs(const TileProblem& problem, const TileJob& job, const ColumnInfo* columns,
                             int64_t real_columns, int64_t padded_columns, uint32_t* packed) {
  using Floats = xsimd::batch<float, Arch>;
  constexpr int64_t W = Floats::size;
  static_assert(W == kPairRows, "a 16 × 16 word transpose");
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

// The online softmax of a key block (online_softmax_block's update: the same max and row-by-row
// sums, the exponentials from exp2_approx's Coarse form, as they are rounded to bf16 next) with
// the weights written straight as P·V's left operand instead of back into the scores:
// weights[c][r] = bf16(2^(scores[r][c] - new_max[c])) for r < rows, and 0 for the keys from
// `rows` to key_rows (pair_key_rows(rows)). The exponentials round to nearest even and transpose
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
  static_assert(2 * W == kPairDepth, "two rows of exponentials make a register of bf16 pairs");
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
    for (int64_t r0 = 0; r0 < key_rows; r0 += kPairDepth) {
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

}  // namespace pairs

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE

#endif
