// StreamSum's definition; include it only in the per-ISA translation units.
#pragma once

#include "machine/stream_sum.hpp"

namespace simdattn::bench {

template <class Arch>
float StreamSum::operator()(Arch, const float* data, int64_t count) const {
  using Batch = xsimd::batch<float, Arch>;
  constexpr int64_t kLanes = static_cast<int64_t>(Batch::size);
  constexpr int64_t kStep = kLanes * kAccumulators;

  Batch accumulators[kAccumulators];
  for (int i = 0; i < kAccumulators; ++i) accumulators[i] = Batch(0.0f);

  int64_t index = 0;
  for (; index + kStep <= count; index += kStep) {
#pragma GCC unroll 16
    for (int i = 0; i < kAccumulators; ++i) {
      accumulators[i] += Batch::load_unaligned(data + index + i * kLanes);
    }
  }
  Batch total = accumulators[0];
  for (int i = 1; i < kAccumulators; ++i) total += accumulators[i];
  float sum = xsimd::hadd(total);
  for (; index < count; ++index) sum += data[index];  // the tail, shorter than one step
  return sum;
}

}  // namespace simdattn::bench
