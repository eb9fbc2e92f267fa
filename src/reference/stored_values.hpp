// The oracles' view of stored elements: the exact value each dtype holds, widened to double, and
// one correctly rounded store of a double result into an f32, bf16 or f16 output.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include "simdattn/tensor.hpp"

namespace simdattn::reference::detail {

inline double bf16_value(uint16_t bits) {
  const uint32_t widened = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &widened, sizeof value);
  return value;
}

inline double f16_value(uint16_t bits) {
  const double sign = (bits & 0x8000u) != 0 ? -1.0 : 1.0;
  const int exponent = (bits >> 10) & 0x1f;
  const int mantissa = bits & 0x3ff;
  if (exponent == 0x1f) return mantissa != 0 ? std::nan("") : sign * INFINITY;
  if (exponent == 0) return sign * std::ldexp(mantissa, -24);  // subnormal (or zero)
  return sign * std::ldexp(mantissa + 1024, exponent - 25);
}

// Element `index` of a row of `dtype` starting at `row`, exactly.
inline double stored_value(const void* row, DType dtype, int64_t index) {
  switch (dtype) {
    case DType::f32: return static_cast<const float*>(row)[index];
    case DType::bf16: return bf16_value(static_cast<const bf16*>(row)[index].bits);
    case DType::f16: return f16_value(static_cast<const f16*>(row)[index].bits);
    case DType::i8: return static_cast<const int8_t*>(row)[index];
  }
  return std::nan("");
}

// A q, k or v input as the oracles read it: the stored value times its scale (int8 caches) or
// the stored value itself. f32 is read in place; any other dtype is widened once, on
// construction, into doubles (every element is read many times, and decoding it each time would
// make the oracle several times slower).
class StoredValues {
 public:
  StoredValues(const AnyConstTensorView& view, const std::optional<ConstTensorView>& scales)
      : view_(view) {
    if (view.dtype == DType::f32 && !scales.has_value()) return;
    const auto& s = view.shape;
    widened_.resize(static_cast<size_t>(s[0] * s[1] * s[2] * s[3]));
    const int64_t group = scales.has_value() ? s[3] / scales->shape[3] : 1;
    size_t next = 0;
    for (int64_t b = 0; b < s[0]; ++b)
      for (int64_t h = 0; h < s[1]; ++h)
        for (int64_t j = 0; j < s[2]; ++j) {
          const void* row = view.row(b, h, j);
          const float* scale_row = scales.has_value() ? scales->row(b, h, j) : nullptr;
          for (int64_t d = 0; d < s[3]; ++d) {
            const double stored = stored_value(row, view.dtype, d);
            widened_[next++] = scale_row == nullptr
                                   ? stored
                                   : stored * static_cast<double>(scale_row[d / group * scales->strides[3]]);
          }
        }
  }

  double at(int64_t b, int64_t h, int64_t j, int64_t d) const {
    if (widened_.empty()) return static_cast<const float*>(view_.row(b, h, j))[d];
    const auto& s = view_.shape;
    return widened_[static_cast<size_t>(((b * s[1] + h) * s[2] + j) * s[3] + d)];
  }

 private:
  AnyConstTensorView view_;
  std::vector<double> widened_;
};

// x rounded to nearest, ties to even, onto the grid of a binary format with `precision`
// significand bits whose smallest normal exponent is `min_exponent` and whose largest finite
// value is `largest`; beyond largest (after rounding) it is ±inf. Exact for any double x.
inline double round_to_format(double x, int precision, int min_exponent, double largest) {
  if (!std::isfinite(x) || x == 0.0) return x;
  int exponent = 0;
  std::frexp(x, &exponent);  // |x| in [2^(exponent-1), 2^exponent)
  const int lead = std::max(exponent - 1, min_exponent);
  const double quantum = std::ldexp(1.0, lead - (precision - 1));
  const double scaled = x / quantum;  // exact: a power-of-two scaling
  double rounded = std::floor(scaled);
  const double fraction = scaled - rounded;
  if (fraction > 0.5 || (fraction == 0.5 && std::fmod(rounded, 2.0) != 0.0)) rounded += 1.0;
  const double result = rounded * quantum;
  if (std::fabs(result) > largest) return std::copysign(INFINITY, x);
  return result;
}

// Writes x, rounded once, as element `index` of an output row of `dtype` (f32, bf16 or f16).
inline void store_rounded(void* row, DType dtype, int64_t index, double x) {
  switch (dtype) {
    case DType::f32:
      static_cast<float*>(row)[index] = static_cast<float>(x);
      return;
    case DType::bf16: {
      // Every bf16 value is a float, so the rounded result converts exactly; NaN stays a quiet NaN.
      const float value = std::isnan(x) ? NAN : static_cast<float>(round_to_format(x, 8, -126, 0x1.fep127));
      uint32_t bits;
      std::memcpy(&bits, &value, sizeof bits);
      static_cast<bf16*>(row)[index].bits = static_cast<uint16_t>(bits >> 16);
      return;
    }
    case DType::f16: {
      const uint16_t sign = std::signbit(x) ? 0x8000u : 0u;
      uint16_t bits;
      if (std::isnan(x)) {
        bits = 0x7e00u;
      } else {
        const double value = std::fabs(round_to_format(x, 11, -14, 65504.0));
        if (std::isinf(value)) {
          bits = 0x7c00u;
        } else if (value < 0x1p-14) {
          bits = static_cast<uint16_t>(value * 0x1p24);  // subnormal: a multiple of 2^-24
        } else {
          int exponent = 0;
          const double fraction = std::frexp(value, &exponent);  // value = fraction · 2^exponent
          const auto mantissa = static_cast<uint16_t>(std::ldexp(fraction, 11) - 1024.0);
          bits = static_cast<uint16_t>((exponent - 1 + 15) << 10 | mantissa);
        }
      }
      static_cast<f16*>(row)[index].bits = static_cast<uint16_t>(sign | bits);
      return;
    }
    case DType::i8: return;  // not an output dtype: validation rejects it
  }
}

}  // namespace simdattn::reference::detail
