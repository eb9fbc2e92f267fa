// The definitions of FiniteRowKernel and QuantizeRowKernel (convert_kernels.hpp): the scalar
// quantization of scalar_convert.hpp, operation for operation, a register of lanes at a time.
// The division is IEEE's in every lane (on NEON too: see divide), the clamp and the tie test are
// comparisons, and the truncation to int (cvttps, NEON's FCVTZS) ignores the rounding mode, so
// every ISA gives the scalar bits under any MXCSR or FPCR. Groups narrower than a register, and the tail of each group past
// its last whole register, go through the scalar code.
#pragma once

#include <algorithm>
#include <cfloat>
#include <cstdint>
#include <cstring>

#include <xsimd/xsimd.hpp>

#include "kernels/convert_kernels.hpp"
#include "kernels/isa_namespace.hpp"
#include "kernels/scalar_convert.hpp"

namespace simdattn::detail {
namespace SIMDATTN_ISA_NAMESPACE {
namespace quantize {

// numerators / denominators, IEEE's division in every lane. xsimd 8.1's NEON division is a
// reciprocal estimate refined by Newton-Raphson steps, not correctly rounded: under round toward
// zero it made 3.5 / 1 into 3.4999, which quantized a tie the wrong way (qemu-aarch64).
template <class Arch>
inline xsimd::batch<float, Arch> divide(const xsimd::batch<float, Arch>& numerators,
                                        const xsimd::batch<float, Arch>& denominators) {
#if defined(__aarch64__)
  return vdivq_f32(numerators, denominators);
#else
  return numerators / denominators;
#endif
}

// The lanes of `integers` (each within [-127, 127]) stored as bytes at out.
template <class Arch>
inline void store_bytes(int8_t* out, const xsimd::batch<int32_t, Arch>& integers) {
  constexpr int64_t kLanes = xsimd::batch<int32_t, Arch>::size;
#if defined(__AVX512F__)
  if constexpr (kLanes == 16) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm512_cvtepi32_epi8(integers));
    return;
  }
#elif defined(__AVX2__)
  if constexpr (kLanes == 8) {
    const __m128i words = _mm_packs_epi32(_mm256_castsi256_si128(integers), _mm256_extracti128_si256(integers, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_packs_epi16(words, words));
    return;
  }
#elif defined(__SSE2__)
  if constexpr (kLanes == 4) {
    const __m128i words = _mm_packs_epi32(integers, integers);
    const int32_t four = _mm_cvtsi128_si32(_mm_packs_epi16(words, words));
    std::memcpy(out, &four, sizeof four);
    return;
  }
#endif
  alignas(64) int32_t lanes[kLanes];
  integers.store_aligned(lanes);
  for (int64_t lane = 0; lane < kLanes; ++lane) out[lane] = static_cast<int8_t>(lanes[lane]);
}

template <class Arch>
inline float largest_magnitude(const float* values, int64_t count) {
  using Floats = xsimd::batch<float, Arch>;
  constexpr int64_t kLanes = Floats::size;
  int64_t e = 0;
  float largest = 0.0f;
  if (count >= kLanes) {
    Floats most(0.0f);
    for (; e + kLanes <= count; e += kLanes) most = xsimd::max(most, xsimd::abs(Floats::load_unaligned(values + e)));
    alignas(64) float lanes[kLanes];
    most.store_aligned(lanes);
    for (float magnitude : lanes) largest = magnitude > largest ? magnitude : largest;
  }
  const float tail = largest_magnitude_scalar(values + e, count - e);
  return tail > largest ? tail : largest;
}

// values[0, count) quantized with `scale` into out (all zeros when scale is 0), as
// quantize_values_scalar does.
template <class Arch>
inline void quantize_values(const float* values, int64_t count, float scale, int8_t* out) {
  using Floats = xsimd::batch<float, Arch>;
  constexpr int64_t kLanes = Floats::size;
  if (!(scale > 0.0f)) {
    std::fill(out, out + count, int8_t(0));
    return;
  }
  const Floats scales(scale), top(127.0f), bottom(-127.0f), half(0.5f), zero(0.0f), up(1.0f), down(-1.0f);
  int64_t e = 0;
  for (; e + kLanes <= count; e += kLanes) {
    const Floats value = xsimd::min(xsimd::max(divide(Floats::load_unaligned(values + e), scales), bottom), top);
    const Floats whole = xsimd::to_float(xsimd::to_int(value));
    const Floats distance = xsimd::abs(value - whole);
    const Floats half_whole = whole * half;  // exact: |whole| <= 127
    const auto odd = xsimd::to_float(xsimd::to_int(half_whole)) != half_whole;
    const auto away = (distance > half) | ((distance == half) & odd);
    const Floats rounded = whole + xsimd::select(away, xsimd::select(value < zero, down, up), zero);
    store_bytes<Arch>(out + e, xsimd::to_int(rounded));
  }
  quantize_values_scalar(values + e, count - e, scale, out + e);
}

}  // namespace quantize
}  // namespace SIMDATTN_ISA_NAMESPACE

template <class Arch>
void FiniteRowKernel::operator()(Arch, const float* row, int64_t count, bool* all_finite) const {
  using Floats = xsimd::batch<float, Arch>;
  constexpr int64_t kLanes = Floats::size;
  const Floats largest_finite(FLT_MAX);
  int64_t e = 0;
  bool finite = true;
  for (; e + kLanes <= count; e += kLanes) {
    // NaN compares false, infinity exceeds the largest finite float.
    finite &= xsimd::all(xsimd::abs(Floats::load_unaligned(row + e)) <= largest_finite);
  }
  for (; e < count; ++e) finite &= (row[e] < 0.0f ? -row[e] : row[e]) <= FLT_MAX;
  *all_finite = finite;
}

template <class Arch>
void QuantizeRowKernel::operator()(Arch, const float* row, int64_t length, int64_t group, int8_t* out,
                                   float* scales, int64_t scale_stride) const {
  for (int64_t begin = 0; begin < length; begin += group) {
    const float scale = SIMDATTN_ISA_NAMESPACE::quantize::largest_magnitude<Arch>(row + begin, group) / 127.0f;
    scales[begin / group * scale_stride] = scale;
    SIMDATTN_ISA_NAMESPACE::quantize::quantize_values<Arch>(row + begin, group, scale, out + begin);
  }
}

}  // namespace simdattn::detail
