// Where a tile's output accumulator keeps its elements, and the plain product's fallback for key
// blocks whose values are not all finite: a key a column does not see must not bring a NaN to it.
#pragma once

#include <cmath>
#include <cstdint>

#include <xsimd/xsimd.hpp>

#include "kernels/isa_namespace.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

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

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE
