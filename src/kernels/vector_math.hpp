// Arithmetic on SIMD registers that the kernels share: fused multiply-add, and exp, exp2 and tanh
// for the softmax and the logit soft-cap.
#pragma once

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#include <cstddef>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "kernels/isa_namespace.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

// a·b + c, rounded once. xsimd 8.1 implements its fma for fma3<sse> and fma3<avx> only: for
// avx512f, xsimd::fma is the generic a * b + c, one FMA instruction only if the compiler
// contracts it (GCC by default; not under -ffp-contract=off, where the AVX-512 kernels lose
// much of their speed: docs/tuning.md). This one is vfmadd on AVX-512 whatever the compiler's settings; SSE2 has
// no FMA and multiplies, then adds. On NEON xsimd::fma is FMLA (vfmaq_f32), fused.
template <class Arch>
inline xsimd::batch<float, Arch> multiply_add(xsimd::batch<float, Arch> a,
                                              xsimd::batch<float, Arch> b,
                                              xsimd::batch<float, Arch> c) {
#if defined(__x86_64__) || defined(_M_X64)
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
    return _mm512_fmadd_ps(a, b, c);
  } else {
    return xsimd::fma(a, b, c);
  }
#else
  return xsimd::fma(a, b, c);
#endif
}

// c[0]·x^(N-1) + c[1]·x^(N-2) + ... + c[N-1] by Horner's rule: one FMA a coefficient.
template <class Arch, size_t N>
inline xsimd::batch<float, Arch> horner(xsimd::batch<float, Arch> x, const float (&c)[N]) {
  using Floats = xsimd::batch<float, Arch>;
  Floats p(c[0]);
#pragma GCC unroll 16
  for (size_t i = 1; i < N; ++i) p = multiply_add<Arch>(p, x, Floats(c[i]));
  return p;
}

// p · 2^n for every lane, n integral and at least -126, and 0 where `underflow` holds (a NaN x
// compares false and stays NaN). On AVX-512 one vscalefps, the zeroing in the same instruction;
// elsewhere 2^n assembled in the exponent bits (n at most 127) and a select. Scaling by a power
// of two is exact or rounds once, so both give the same bits.
template <class Arch>
inline xsimd::batch<float, Arch> scale_by_power_of_two(xsimd::batch<float, Arch> p,
                                                       xsimd::batch<float, Arch> n,
                                                       xsimd::batch_bool<float, Arch> underflow) {
  using Floats = xsimd::batch<float, Arch>;
  using Ints = xsimd::batch<int32_t, Arch>;
#if defined(__x86_64__) || defined(_M_X64)
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
    return _mm512_maskz_scalef_ps(static_cast<__mmask16>(~underflow.data), p, n);
  } else
#endif
  {
    const Ints biased_exponent = (xsimd::to_int(n) + Ints(127)) << 23;
    return xsimd::select(underflow, Floats(0.0f), p * xsimd::bitwise_cast<Floats>(biased_exponent));
  }
}

// e^x for every lane. Cody–Waite range reduction x = n·ln2 + r, |r| <= ln2/2, then Cephes' degree-6
// polynomial for e^r, scaled by 2^n (scale_by_power_of_two): 16 operations a register on AVX-512,
// 21 on AVX2.
// Accuracy: at most 2 ULP against the correctly rounded e^x for x in [-87.33, 88.37] (where e^x is
// a normal float), measured over every 61st float there in tests/test_vector_math.cpp.
// Outside: x < -87.33 gives 0 (results below FLT_MIN are flushed, an absolute error under 1.2e-38;
// -inf gives 0), x > 88.37 saturates at e^88.37 ≈ 2.4e38 (+inf included), NaN gives NaN. Every
// caller's argument is at most 0 (the softmax's x - max, the correction's old - new max) or
// only needs "huge" (tanh's e^2|x|), so saturation costs nothing and saves a select per register.
template <class Arch>
inline xsimd::batch<float, Arch> exp_approx(xsimd::batch<float, Arch> x) {
  using Floats = xsimd::batch<float, Arch>;
  const Floats lowest(-87.33654475f), highest(88.37626266f);
  // x as the second operand: max and min return their second operand when either is NaN
  // (MAXPS/MINPS), so a NaN passes the clamp and propagates through the arithmetic below.
  const Floats clamped = xsimd::min(highest, xsimd::max(lowest, x));
  // n = round(x / ln2): adding and subtracting 1.5·2^23 rounds to nearest for |v| < 2^22.
  const Floats round_magic(12582912.0f);
  const Floats n =
      multiply_add<Arch>(clamped, Floats(1.44269504088896341f), round_magic) - round_magic;
  // r = x - n·ln2 in two steps, ln2 = 0.693359375 - 2.12194440e-4 (the first part exact in float).
  Floats r = multiply_add<Arch>(n, Floats(-0.693359375f), clamped);
  r = multiply_add<Arch>(n, Floats(2.12194440e-4f), r);
  static constexpr float kCoefficients[] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                                            4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
  const Floats p =
      multiply_add<Arch>(horner<Arch>(r, kCoefficients), r * r, r + Floats(1.0f));
  return scale_by_power_of_two<Arch>(p, n, x < lowest);
}

// 2^x for every lane, for the softmax of base-2 logits (online_softmax.hpp): its arguments are
// x - max and old max - new max, so x <= 0, -inf or NaN. x = n + f with n = round(x), |f| <= 1/2,
// then Cephes' exp2f polynomial 2^f = 1 + f·P(f) (degree 6), scaled by 2^n
// (scale_by_power_of_two). No range reduction by ln 2 and no clamps: 10 operations a register on
// AVX-512 where exp_approx takes 16, 14 on AVX2 where it takes 21.
// Accuracy: at most 1 ULP against the correctly rounded 2^x for x in [-126, 0] (where 2^x is a
// normal float), measured over every 61st float there in tests/test_vector_math.cpp. x < -126 gives
// 0 (flushed, an absolute error under 1.2e-38; -inf gives 0, raising no exception), NaN gives NaN.
// Positive x is outside the contract (AVX2 and SSE2 assemble 2^n in the exponent bits, which
// overflow past n = 127).
// Coarse: a degree-4 polynomial 2^f ≈ 1 + f·Q(f) (a relative minimax fit on [-1/2, 1/2]), two FMAs
// fewer, for exponentials that are rounded to bf16 next (the AMX tile's softmax weights, relative
// 2⁻⁹): at most 5e-6 relative error against 2^x where 2^x is a normal float, x in [-126, 0]
// (tests/test_vector_math.cpp), the same special values.
template <class Arch, bool Coarse = false>
inline xsimd::batch<float, Arch> exp2_approx(xsimd::batch<float, Arch> x) {
  using Floats = xsimd::batch<float, Arch>;
  const Floats lowest(-126.0f);
  // Below -127 every result is 0 (the underflow mask below tests x itself), so clamping there
  // changes no result; it keeps -inf (a masked logit) away from -inf - -inf in f and from an
  // out-of-range float-to-int conversion, each an invalid operation that raises FE_INVALID.
  // x as the second operand of max: a NaN x passes through (MAXPS returns it).
  const Floats bounded = xsimd::max(Floats(-127.0f), x);
  Floats n;
#if defined(__x86_64__) || defined(_M_X64)
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
    n = _mm512_roundscale_ps(bounded, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  } else {
    n = xsimd::nearbyint(bounded);
  }
#else
  // FRINTN: to nearest, ties to even, whatever FPCR's rounding mode (xsimd 8.1 has no neon64
  // nearbyint of its own and would take its generic one).
  static_assert(std::is_same_v<Arch, xsimd::neon64>, "AArch64 registers NEON only");
  n = vrndnq_f32(bounded);
#endif
  // f is exact: bounded and n are within 1/2 of each other (NaN for x = +inf or NaN).
  const Floats f = bounded - n;
  static constexpr float kCoefficients[] = {1.535336188319500e-4f, 1.339887440266574e-3f,
                                            9.618437357674640e-3f, 5.550332471162809e-2f,
                                            2.402264791363012e-1f, 6.931472028550421e-1f, 1.0f};
  static constexpr float kCoarseCoefficients[] = {9.622951684890906e-3f, 5.597481970265289e-2f,
                                                  2.402338858391595e-1f, 6.931113015169527e-1f, 1.0f};
  const Floats p = Coarse ? horner<Arch>(f, kCoarseCoefficients) : horner<Arch>(f, kCoefficients);
  return scale_by_power_of_two<Arch>(p, n, x < lowest);
}

// tanh(x) = sign(x) · (1 - 2 / (e^{2|x|} + 1)): accurate to a few ULP away from 0; near 0 the
// subtraction cancels, leaving an absolute error of about 1e-7, far below what a soft-cap needs.
template <class Arch>
inline xsimd::batch<float, Arch> tanh_approx(xsimd::batch<float, Arch> x) {
  using Floats = xsimd::batch<float, Arch>;
  const Floats magnitude = xsimd::abs(x);
  const Floats e = exp_approx<Arch>(magnitude + magnitude);
  const Floats t = Floats(1.0f) - Floats(2.0f) / (e + Floats(1.0f));
  return xsimd::select(x < Floats(0.0f), -t, t);
}

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE
