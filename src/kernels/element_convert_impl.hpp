// Per-ISA element conversions of whole rows: widen (bf16, f16, int8 · scale → float) and narrow
// (float → bf16, f16, rounded to nearest even). Every result is bit for bit that of the scalar
// conversions (scalar_convert.hpp), NaN payloads included, whatever MXCSR holds: the f16
// instructions take their rounding from the immediate, and bf16 goes through integer arithmetic.
//
// The vector width is the unit's (its compile flags): AVX-512 and AVX2+F16C convert every dtype;
// SSE2 and NEON convert bf16 and int8 and leave f16 to the scalar code (NEON's FCVT quiets
// signalling NaNs and follows FPCR, where the scalar code keeps every payload). Tails past the last
// whole register go through the scalar code too.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#include "kernels/isa_namespace.hpp"
#include "kernels/scalar_convert.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

namespace convert {

#if defined(__AVX512F__) && defined(__AVX512BW__)

inline constexpr int64_t kLanes = 16;
inline constexpr bool kHasF16 = true;
using Floats = __m512;

inline Floats load_bf16(const uint16_t* source) {
  const __m256i halves = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(source));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(halves), 16));
}
inline Floats load_f16(const uint16_t* source) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(source)));
}
inline Floats load_i8(const int8_t* source) {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(source));
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes));
}
inline Floats broadcast(float value) { return _mm512_set1_ps(value); }
inline Floats multiply(Floats a, Floats b) { return _mm512_mul_ps(a, b); }
inline Floats add(Floats a, Floats b) { return _mm512_add_ps(a, b); }
inline Floats load(const float* source) { return _mm512_loadu_ps(source); }
inline void store(float* destination, Floats values) { _mm512_storeu_ps(destination, values); }
// Around the caches (non-temporal); the destination aligned to a register.
inline void stream(float* destination, Floats values) { _mm512_stream_ps(destination, values); }

inline void store_bf16(uint16_t* destination, Floats values) {
  const __m512i bits = _mm512_castps_si512(values);
  const __m512i lowest_kept = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_srli_epi32(
      _mm512_add_epi32(bits, _mm512_add_epi32(lowest_kept, _mm512_set1_epi32(0x7fff))), 16);
  const __m512i quiet_nan = _mm512_or_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x40));
  const __mmask16 is_nan = _mm512_cmp_ps_mask(values, values, _CMP_UNORD_Q);
  const __m512i result = _mm512_mask_blend_epi32(is_nan, rounded, quiet_nan);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(destination), _mm512_cvtepi32_epi16(result));
}
inline void store_f16(uint16_t* destination, Floats values) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(destination),
                      _mm512_cvtps_ph(values, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

#elif defined(__AVX2__) && defined(__F16C__)

inline constexpr int64_t kLanes = 8;
inline constexpr bool kHasF16 = true;
using Floats = __m256;

inline Floats load_bf16(const uint16_t* source) {
  const __m128i halves = _mm_loadu_si128(reinterpret_cast<const __m128i*>(source));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(halves), 16));
}
inline Floats load_f16(const uint16_t* source) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(source)));
}
inline Floats load_i8(const int8_t* source) {
  const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(source));
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes));
}
inline Floats broadcast(float value) { return _mm256_set1_ps(value); }
inline Floats multiply(Floats a, Floats b) { return _mm256_mul_ps(a, b); }
inline Floats add(Floats a, Floats b) { return _mm256_add_ps(a, b); }
inline Floats load(const float* source) { return _mm256_loadu_ps(source); }
inline void store(float* destination, Floats values) { _mm256_storeu_ps(destination, values); }
// Around the caches (non-temporal); the destination aligned to a register.
inline void stream(float* destination, Floats values) { _mm256_stream_ps(destination, values); }

inline void store_bf16(uint16_t* destination, Floats values) {
  const __m256i bits = _mm256_castps_si256(values);
  const __m256i lowest_kept = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_srli_epi32(
      _mm256_add_epi32(bits, _mm256_add_epi32(lowest_kept, _mm256_set1_epi32(0x7fff))), 16);
  const __m256i quiet_nan = _mm256_or_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(0x40));
  const __m256 is_nan = _mm256_cmp_ps(values, values, _CMP_UNORD_Q);
  const __m256i result = _mm256_castps_si256(
      _mm256_blendv_ps(_mm256_castsi256_ps(rounded), _mm256_castsi256_ps(quiet_nan), is_nan));
  // Every lane is below 2^16, so the unsigned saturating pack keeps it as it is.
  const __m128i packed =
      _mm_packus_epi32(_mm256_castsi256_si128(result), _mm256_extracti128_si256(result, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(destination), packed);
}
inline void store_f16(uint16_t* destination, Floats values) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(destination),
                   _mm256_cvtps_ph(values, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

#elif defined(__aarch64__)  // NEON: integer arithmetic only, so FPCR cannot change a bit

inline constexpr int64_t kLanes = 4;
inline constexpr bool kHasF16 = false;
using Floats = float32x4_t;

inline Floats load_bf16(const uint16_t* source) {
  return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(source), 16));
}
inline Floats load_f16(const uint16_t*);  // never called: kHasF16 is false
inline Floats load_i8(const int8_t* source) {
  // Four bytes, not vld1_s8's eight: the last register of a row must not read past its end.
  uint32_t four;
  std::memcpy(&four, source, sizeof four);
  const int16x8_t halves = vmovl_s8(vreinterpret_s8_u32(vdup_n_u32(four)));
  return vcvtq_f32_s32(vmovl_s16(vget_low_s16(halves)));
}
inline Floats broadcast(float value) { return vdupq_n_f32(value); }
inline Floats multiply(Floats a, Floats b) { return vmulq_f32(a, b); }
inline Floats add(Floats a, Floats b) { return vaddq_f32(a, b); }
inline Floats load(const float* source) { return vld1q_f32(source); }
inline void store(float* destination, Floats values) { vst1q_f32(destination, values); }
// NEON has no non-temporal store intrinsic: an ordinary store.
inline void stream(float* destination, Floats values) { vst1q_f32(destination, values); }

inline void store_bf16(uint16_t* destination, Floats values) {
  const uint32x4_t bits = vreinterpretq_u32_f32(values);
  const uint32x4_t lowest_kept = vandq_u32(vshrq_n_u32(bits, 16), vdupq_n_u32(1));
  const uint32x4_t rounded =
      vshrq_n_u32(vaddq_u32(bits, vaddq_u32(lowest_kept, vdupq_n_u32(0x7fff))), 16);
  const uint32x4_t quiet_nan = vorrq_u32(vshrq_n_u32(bits, 16), vdupq_n_u32(0x40));
  // x != x only for NaN; the comparison raises no exception for a quiet NaN and flushes nothing
  // that matters (a flushed subnormal still equals itself).
  const uint32x4_t is_nan = vmvnq_u32(vceqq_f32(values, values));
  // Every lane is below 2^16, so narrowing keeps it as it is.
  vst1_u16(destination, vmovn_u32(vbslq_u32(is_nan, quiet_nan, rounded)));
}
inline void store_f16(uint16_t*, Floats);  // never called: kHasF16 is false

#else  // SSE2: no f16 instructions

inline constexpr int64_t kLanes = 4;
inline constexpr bool kHasF16 = false;
using Floats = __m128;

inline Floats load_bf16(const uint16_t* source) {
  const __m128i halves = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(source));
  return _mm_castsi128_ps(_mm_unpacklo_epi16(_mm_setzero_si128(), halves));
}
inline Floats load_f16(const uint16_t*);  // never called: kHasF16 is false
inline Floats load_i8(const int8_t* source) {
  int32_t four;
  std::memcpy(&four, source, sizeof four);
  const __m128i bytes = _mm_cvtsi32_si128(four);
  // Each byte into the top of its 32-bit lane, then an arithmetic shift extends its sign.
  const __m128i spread = _mm_unpacklo_epi16(_mm_unpacklo_epi8(bytes, bytes),
                                            _mm_unpacklo_epi8(bytes, bytes));
  return _mm_cvtepi32_ps(_mm_srai_epi32(spread, 24));
}
inline Floats broadcast(float value) { return _mm_set1_ps(value); }
inline Floats multiply(Floats a, Floats b) { return _mm_mul_ps(a, b); }
inline Floats add(Floats a, Floats b) { return _mm_add_ps(a, b); }
inline Floats load(const float* source) { return _mm_loadu_ps(source); }
inline void store(float* destination, Floats values) { _mm_storeu_ps(destination, values); }
// Around the caches (non-temporal); the destination aligned to a register.
inline void stream(float* destination, Floats values) { _mm_stream_ps(destination, values); }

inline void store_bf16(uint16_t* destination, Floats values) {
  const __m128i bits = _mm_castps_si128(values);
  const __m128i lowest_kept = _mm_and_si128(_mm_srli_epi32(bits, 16), _mm_set1_epi32(1));
  const __m128i rounded =
      _mm_srli_epi32(_mm_add_epi32(bits, _mm_add_epi32(lowest_kept, _mm_set1_epi32(0x7fff))), 16);
  const __m128i quiet_nan = _mm_or_si128(_mm_srli_epi32(bits, 16), _mm_set1_epi32(0x40));
  const __m128i is_nan = _mm_castps_si128(_mm_cmpunord_ps(values, values));
  const __m128i result =
      _mm_or_si128(_mm_and_si128(is_nan, quiet_nan), _mm_andnot_si128(is_nan, rounded));
  // Sign-extend the low halves so that the signed saturating pack keeps their bits.
  const __m128i packed = _mm_packs_epi32(_mm_srai_epi32(_mm_slli_epi32(result, 16), 16),
                                         _mm_setzero_si128());
  _mm_storel_epi64(reinterpret_cast<__m128i*>(destination), packed);
}
inline void store_f16(uint16_t*, Floats);  // never called: kHasF16 is false

#endif

// destination[e] = load(source + e) for the whole registers of [0, count); returns where the
// scalar tail starts.
template <class Element, class Load>
inline int64_t widen_whole_registers(const Element* source, int64_t count, float* destination,
                                     Load load) {
  int64_t e = 0;
  for (; e + kLanes <= count; e += kLanes) store(destination + e, load(source + e));
  return e;
}

inline void widen_i8(const int8_t* source, int64_t count, float* destination, const float* scales,
                     int64_t group) {
  if (scales == nullptr) {
    const int64_t tail = widen_whole_registers(source, count, destination, load_i8);
    widen_row_scalar(source + tail, DType::i8, count - tail, destination + tail, nullptr, 1);
    return;
  }
  // One scale per group of elements: whole registers inside each group, the rest one by one,
  // each value multiplied once by its group's scale as the scalar code does.
  for (int64_t begin = 0; begin < count; begin += group) {
    const int64_t end = begin + group < count ? begin + group : count;
    const float scale = scales[begin / group];
    const Floats scale_vector = broadcast(scale);
    int64_t e = begin;
    for (; e + kLanes <= end; e += kLanes) {
      store(destination + e, multiply(load_i8(source + e), scale_vector));
    }
    for (; e < end; ++e) destination[e] = static_cast<float>(source[e]) * scale;
  }
}

}  // namespace convert

// destination[e] = the value of source element e (int8 times scales[e / group] when scales is not
// null), for e < count. Out of line: called once per row, from code paths (the fp32 ones) that
// must not grow with it.
template <class Arch>
[[gnu::noinline]] void widen_row(const void* source, DType dtype, int64_t count, float* destination,
                                 const float* scales, int64_t group) {
  using namespace convert;
  int64_t tail = 0;
  switch (dtype) {
    case DType::f32: break;
    case DType::bf16:
      tail = widen_whole_registers(static_cast<const uint16_t*>(source), count, destination, load_bf16);
      break;
    case DType::f16:
      if constexpr (kHasF16) {
        tail = widen_whole_registers(static_cast<const uint16_t*>(source), count, destination, load_f16);
      }
      break;
    case DType::i8:
      widen_i8(static_cast<const int8_t*>(source), count, destination, scales, group);
      return;
  }
  widen_row_scalar(static_cast<const unsigned char*>(source) + tail * dtype_size(dtype), dtype,
                   count - tail, destination + tail, scales, group);
}

// The first `count` floats of source rounded into a row of `dtype` (f32, bf16 or f16).
template <class Arch>
[[gnu::noinline]] void narrow_row(const float* source, int64_t count, void* destination, DType dtype) {
  using namespace convert;
  auto* halves = static_cast<uint16_t*>(destination);
  int64_t tail = 0;
  if (dtype == DType::bf16) {
    for (; tail + kLanes <= count; tail += kLanes) store_bf16(halves + tail, load(source + tail));
  } else if (dtype == DType::f16) {
    if constexpr (kHasF16) {
      for (; tail + kLanes <= count; tail += kLanes) store_f16(halves + tail, load(source + tail));
    }
  }
  narrow_row_scalar(source + tail, count - tail,
                    static_cast<unsigned char*>(destination) + tail * dtype_size(dtype), dtype);
}

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE
