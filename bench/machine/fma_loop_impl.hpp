// FmaLoop's definition; include it only in the per-ISA translation units.
#pragma once

#include "kernels/vector_math.hpp"
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
      // The kernels' multiply_add: one FMA instruction on AVX-512 whatever the compiler's
      // contraction setting (xsimd 8.1's fma is a generic a * b + c there).
      accumulators[i] = detail::SIMDATTN_ISA_NAMESPACE::multiply_add<Arch>(accumulators[i], multiplier, addend);
    }
  }

  Batch total = accumulators[0];
  for (int i = 1; i < kAccumulators; ++i) total += accumulators[i];
  const double flops = 2.0 * static_cast<double>(rounds) * kAccumulators * static_cast<double>(Batch::size);
  return {flops, xsimd::hadd(total), Arch::name()};
}

}  // namespace simdattn::bench
