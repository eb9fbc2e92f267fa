// FmaLoop's definition; include it only in the per-ISA translation units.
#pragma once

#include <immintrin.h>

#include <type_traits>

#include "machine/fma_loop.hpp"

namespace simdattn::bench {

template <class Arch>
FmaLoopResult FmaLoop::operator()(Arch, int64_t rounds) const {
  using Batch = xsimd::batch<float, Arch>;
  // acc ← acc·m + a converges to a / (1 − m) = 1 and stays a normal number from any start in
  // [0, 1], so no round is slowed by denormals or turns into inf.
  const Batch multiplier(0.999f);
  const Batch addend(0.001f);
  Batch accumulators[kAccumulators];
  for (int i = 0; i < kAccumulators; ++i) accumulators[i] = Batch(0.05f * static_cast<float>(i));

  for (int64_t round = 0; round < rounds; ++round) {
    // Fully unrolled so the accumulators live in registers, not in the array's memory.
#pragma GCC unroll 16
    for (int i = 0; i < kAccumulators; ++i) {
      // xsimd 8.1's fma on avx512f is a generic a * b + c that only the compiler's contraction
      // turns into one instruction; the roof must not depend on that (the library's
      // multiply_add makes the same choice).
      if constexpr (std::is_same_v<Arch, xsimd::avx512f>) {
        accumulators[i] = _mm512_fmadd_ps(accumulators[i], multiplier, addend);
      } else {
        accumulators[i] = xsimd::fma(accumulators[i], multiplier, addend);
      }
    }
  }

  Batch total = accumulators[0];
  for (int i = 1; i < kAccumulators; ++i) total += accumulators[i];
  const double flops = 2.0 * static_cast<double>(rounds) * kAccumulators * static_cast<double>(Batch::size);
  return {flops, xsimd::hadd(total), Arch::name()};
}

}  // namespace simdattn::bench
