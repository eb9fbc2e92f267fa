// Square transposes in registers, for the tiles' gathers and scatters between row-major tensors
// and column-major (key-major) scratch: W loads, a few shuffles per element, W stores, instead of
// W² scalar accesses.
#pragma once

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#include <cstdint>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "kernels/isa_namespace.hpp"
#include "kernels/tile_kernels.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

// Rows i of `block` become its columns: block[i] lane j ← block[j] lane i, for W × W floats.
// Four rounds of unpacks and lane shuffles on AVX-512 (16 × 16), three on AVX (8 × 8), two on
// SSE2 and NEON (4 × 4): the standard interleaving networks.
template <class Arch>
inline void transpose_in_registers(xsimd::batch<float, Arch>* block) {
#if defined(__aarch64__)
  static_assert(std::is_same_v<Arch, xsimd::neon64>, "one transpose per instruction set");
  // TRN1/TRN2 on 32-bit lanes pair rows 0-1 and 2-3 (pairs0 = a0 b0 a2 b2, pairs1 = a1 b1 a3 b3),
  // then on 64-bit lanes join the pairs: two rounds, 8 instructions for 16 elements.
  const float32x4_t pairs0 = vtrn1q_f32(block[0], block[1]), pairs1 = vtrn2q_f32(block[0], block[1]);
  const float32x4_t pairs2 = vtrn1q_f32(block[2], block[3]), pairs3 = vtrn2q_f32(block[2], block[3]);
  const auto as_halves = [](float32x4_t v) { return vreinterpretq_f64_f32(v); };
  block[0] = vreinterpretq_f32_f64(vtrn1q_f64(as_halves(pairs0), as_halves(pairs2)));
  block[1] = vreinterpretq_f32_f64(vtrn1q_f64(as_halves(pairs1), as_halves(pairs3)));
  block[2] = vreinterpretq_f32_f64(vtrn2q_f64(as_halves(pairs0), as_halves(pairs2)));
  block[3] = vreinterpretq_f32_f64(vtrn2q_f64(as_halves(pairs1), as_halves(pairs3)));
#else
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
    __m512 pairs[16], quads[16];
    for (int k = 0; k < 8; ++k) {
      pairs[2 * k] = _mm512_unpacklo_ps(block[2 * k], block[2 * k + 1]);
      pairs[2 * k + 1] = _mm512_unpackhi_ps(block[2 * k], block[2 * k + 1]);
    }
    // quads[4k + m], 128-bit lane L: element 4L + m of rows 4k .. 4k + 3.
    for (int k = 0; k < 4; ++k) {
      const __m512d even_low = _mm512_castps_pd(pairs[4 * k]), even_high = _mm512_castps_pd(pairs[4 * k + 1]);
      const __m512d odd_low = _mm512_castps_pd(pairs[4 * k + 2]), odd_high = _mm512_castps_pd(pairs[4 * k + 3]);
      quads[4 * k + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(even_low, odd_low));
      quads[4 * k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(even_low, odd_low));
      quads[4 * k + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(even_high, odd_high));
      quads[4 * k + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(even_high, odd_high));
    }
    for (int m = 0; m < 4; ++m) {
      // Lanes 0 and 2, and 1 and 3, of rows 0-7 and of rows 8-15.
      const __m512 low_even = _mm512_shuffle_f32x4(quads[m], quads[4 + m], _MM_SHUFFLE(2, 0, 2, 0));
      const __m512 low_odd = _mm512_shuffle_f32x4(quads[m], quads[4 + m], _MM_SHUFFLE(3, 1, 3, 1));
      const __m512 high_even = _mm512_shuffle_f32x4(quads[8 + m], quads[12 + m], _MM_SHUFFLE(2, 0, 2, 0));
      const __m512 high_odd = _mm512_shuffle_f32x4(quads[8 + m], quads[12 + m], _MM_SHUFFLE(3, 1, 3, 1));
      block[m] = _mm512_shuffle_f32x4(low_even, high_even, _MM_SHUFFLE(2, 0, 2, 0));
      block[8 + m] = _mm512_shuffle_f32x4(low_even, high_even, _MM_SHUFFLE(3, 1, 3, 1));
      block[4 + m] = _mm512_shuffle_f32x4(low_odd, high_odd, _MM_SHUFFLE(2, 0, 2, 0));
      block[12 + m] = _mm512_shuffle_f32x4(low_odd, high_odd, _MM_SHUFFLE(3, 1, 3, 1));
    }
  } else if constexpr (std::is_same_v<Arch, xsimd::fma3<xsimd::avx2>>) {
    __m256 pairs[8], quads[8];
    for (int k = 0; k < 4; ++k) {
      pairs[2 * k] = _mm256_unpacklo_ps(block[2 * k], block[2 * k + 1]);
      pairs[2 * k + 1] = _mm256_unpackhi_ps(block[2 * k], block[2 * k + 1]);
    }
    // quads[4k + m], 128-bit lane L: element 4L + m of rows 4k .. 4k + 3.
    for (int k = 0; k < 2; ++k) {
      quads[4 * k + 0] = _mm256_shuffle_ps(pairs[4 * k], pairs[4 * k + 2], _MM_SHUFFLE(1, 0, 1, 0));
      quads[4 * k + 1] = _mm256_shuffle_ps(pairs[4 * k], pairs[4 * k + 2], _MM_SHUFFLE(3, 2, 3, 2));
      quads[4 * k + 2] = _mm256_shuffle_ps(pairs[4 * k + 1], pairs[4 * k + 3], _MM_SHUFFLE(1, 0, 1, 0));
      quads[4 * k + 3] = _mm256_shuffle_ps(pairs[4 * k + 1], pairs[4 * k + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int m = 0; m < 4; ++m) {
      block[m] = _mm256_permute2f128_ps(quads[m], quads[4 + m], 0x20);
      block[4 + m] = _mm256_permute2f128_ps(quads[m], quads[4 + m], 0x31);
    }
  } else {
    static_assert(std::is_same_v<Arch, xsimd::sse2>, "one transpose per instruction set");
    const __m128 pair0 = _mm_unpacklo_ps(block[0], block[1]), pair1 = _mm_unpackhi_ps(block[0], block[1]);
    const __m128 pair2 = _mm_unpacklo_ps(block[2], block[3]), pair3 = _mm_unpackhi_ps(block[2], block[3]);
    block[0] = _mm_movelh_ps(pair0, pair2);
    block[1] = _mm_movehl_ps(pair2, pair0);
    block[2] = _mm_movelh_ps(pair1, pair3);
    block[3] = _mm_movehl_ps(pair3, pair1);
  }
#endif
}

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE

namespace simdattn::detail {

template <class Arch>
void TransposeSquare::operator()(Arch, float* square) const {
  using namespace SIMDATTN_ISA_NAMESPACE;
  using Floats = xsimd::batch<float, Arch>;
  constexpr int W = static_cast<int>(Floats::size);
  Floats block[W];
  for (int i = 0; i < W; ++i) block[i] = Floats::load_unaligned(square + i * W);
  transpose_in_registers<Arch>(block);
  for (int i = 0; i < W; ++i) block[i].store_unaligned(square + i * W);
}

}  // namespace simdattn::detail
