// The online softmax down the columns of a key block of base-2 logits (FlashAttention's
// recurrence): running max and sum per column, the correction of what came before, and the
// exponentials in place. Three variants: 1 or 2 registers of columns kept in registers
// (key-major tiles) and the dense layout (decoding tiles narrower than a register).
#pragma once

#include <algorithm>
#include <cstdint>

#include <xsimd/xsimd.hpp>

#include "kernels/isa_namespace.hpp"
#include "kernels/score_layout.hpp"
#include "kernels/vector_math.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

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

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE
