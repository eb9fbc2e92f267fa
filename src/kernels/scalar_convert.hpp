// Element conversions one value at a time, exact and independent of the floating-point
// environment: the fallback of the vectorised conversions (element_convert_impl.hpp) and what
// generic code (the key-chunk merge, empty outputs) uses.
//   widening: bf16 and f16 to float are exact (every such value is a float); an f16 NaN comes
//   out quiet, as F16C's conversion makes it, while bf16 widens by a shift and keeps its bits;
//   narrowing: float to bf16 and f16 rounds to nearest, ties to even; overflow gives ±inf, NaN
//   stays NaN (quiet, sign kept); f16 subnormals are rounded correctly.
#pragma once

#include <cstdint>
#include <cstring>

#include "simdattn/tensor.hpp"

namespace simdattn::detail {

inline float bits_to_float(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

inline uint32_t float_to_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

inline float bf16_to_float(uint16_t bits) { return bits_to_float(static_cast<uint32_t>(bits) << 16); }

inline uint16_t float_to_bf16(float value) {
  const uint32_t bits = float_to_bits(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  // Adding 0x7fff plus the lowest kept bit rounds to nearest, ties to even; a carry out of the
  // mantissa steps the exponent, up to infinity.
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

inline float f16_to_float(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1fu;
  const uint32_t mantissa = bits & 0x3ffu;
  if (exponent == 0x1f) {  // infinity, or NaN made quiet (its payload kept), as F16C does
    const uint32_t quiet = mantissa != 0 ? 0x00400000u : 0u;
    return bits_to_float(sign | 0x7f800000u | quiet | (mantissa << 13));
  }
  if (exponent != 0) return bits_to_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
  // Subnormal or zero: mantissa · 2^-24, exact in float.
  const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
  return sign != 0 ? -magnitude : magnitude;
}

inline uint16_t float_to_f16(float value) {
  const uint32_t bits = float_to_bits(value);
  const auto sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));
  if (magnitude >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520: inf
  if (magnitude < 0x38800000u) {  // below 2^-14: a subnormal (or zero) in units of 2^-24
    if (magnitude <= 0x33000000u) return sign;  // at most 2^-25: rounds to 0 (the tie too)
    const uint32_t exponent = magnitude >> 23;
    const uint32_t significand = (magnitude & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - exponent;  // significand · 2^(exponent - 150) / 2^-24
    uint32_t half = significand >> shift;
    const uint32_t remainder = significand & ((1u << shift) - 1u), halfway = 1u << (shift - 1u);
    if (remainder > halfway || (remainder == halfway && (half & 1u) != 0)) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  // Normal: rebias the exponent (127 → 15) and keep the top 10 mantissa bits; a carry of the
  // rounding steps into the exponent, which the overflow test above keeps below infinity.
  uint32_t half = (magnitude >> 13) - (112u << 10);
  const uint32_t remainder = magnitude & 0x1fffu;
  if (remainder > 0x1000u || (remainder == 0x1000u && (half & 1u) != 0)) ++half;
  return static_cast<uint16_t>(sign | half);
}

// destination[e] = the value of source element e (int8 times scales[e / group] when scales is not
// null), for e < count.
inline void widen_row_scalar(const void* source, DType dtype, int64_t count, float* destination,
                             const float* scales, int64_t group) {
  switch (dtype) {
    case DType::f32:
      std::memcpy(destination, source, static_cast<size_t>(count) * sizeof(float));
      return;
    case DType::bf16:
      for (int64_t e = 0; e < count; ++e) destination[e] = bf16_to_float(static_cast<const bf16*>(source)[e].bits);
      return;
    case DType::f16:
      for (int64_t e = 0; e < count; ++e) destination[e] = f16_to_float(static_cast<const f16*>(source)[e].bits);
      return;
    case DType::i8:
      for (int64_t e = 0; e < count; ++e) {
        const float value = static_cast<float>(static_cast<const int8_t*>(source)[e]);
        destination[e] = scales != nullptr ? value * scales[e / group] : value;
      }
      return;
  }
}

// The first `count` floats of source rounded into a row of `dtype` (f32, bf16 or f16).
inline void narrow_row_scalar(const float* source, int64_t count, void* destination, DType dtype) {
  switch (dtype) {
    case DType::f32:
      std::memcpy(destination, source, static_cast<size_t>(count) * sizeof(float));
      return;
    case DType::bf16:
      for (int64_t e = 0; e < count; ++e) static_cast<bf16*>(destination)[e].bits = float_to_bf16(source[e]);
      return;
    case DType::f16:
      for (int64_t e = 0; e < count; ++e) static_cast<f16*>(destination)[e].bits = float_to_f16(source[e]);
      return;
    case DType::i8: return;  // not an output dtype (validation rejects it)
  }
}

// int8 quantization (quantize_rows), one group of a row at a time: the group's scale is its
// largest magnitude / 127 (0 for a group of zeros, whose values then stay 0), and each value is
// x / scale rounded to nearest, ties to even, whatever the rounding mode: |x / scale| <= 127
// after the clamp, so the truncation to int and every step after it are exact. Comparisons and
// integer arithmetic rather than libm calls; the vectorised kernel (quantize_row_impl.hpp) does
// the same operations lane by lane and gives the same bits. The values must be finite.
inline int8_t quantized_scalar(float x, float scale) {
  float value = x / scale;
  value = value > 127.0f ? 127.0f : value;
  value = value < -127.0f ? -127.0f : value;
  const int32_t whole = static_cast<int32_t>(value);
  const float fraction = value - static_cast<float>(whole);
  const float distance = fraction < 0.0f ? -fraction : fraction;
  const int32_t away = (distance > 0.5f) | ((distance == 0.5f) & (whole & 1));
  const int32_t direction = value < 0.0f ? -1 : 1;
  return static_cast<int8_t>(whole + away * direction);
}

inline float largest_magnitude_scalar(const float* values, int64_t count) {
  float largest = 0.0f;
  for (int64_t e = 0; e < count; ++e) {
    const float magnitude = values[e] < 0.0f ? -values[e] : values[e];
    largest = magnitude > largest ? magnitude : largest;
  }
  return largest;
}

// values[0, count) quantized with `scale` into out (all zeros when scale is 0).
inline void quantize_values_scalar(const float* values, int64_t count, float scale, int8_t* out) {
  for (int64_t e = 0; e < count; ++e) out[e] = scale > 0.0f ? quantized_scalar(values[e], scale) : int8_t(0);
}

// A finite row of `length` floats as int8, one scale per group of `group` elements (group divides
// length), the scale of group g stored at scales[g * scale_stride].
inline void quantize_row_scalar(const float* row, int64_t length, int64_t group, int8_t* out,
                                float* scales, int64_t scale_stride) {
  for (int64_t begin = 0; begin < length; begin += group) {
    const float scale = largest_magnitude_scalar(row + begin, group) / 127.0f;
    scales[begin / group * scale_stride] = scale;
    quantize_values_scalar(row + begin, group, scale, out + begin);
  }
}

}  // namespace simdattn::detail
