// StreamSum's definition; include it only in the per-ISA translation units.
#pragma once

#include "machine/stream_sum.hpp"

namespace simdattn::bench {

template <class Arch>
float StreamSum::operator()(Arch, const float* data, int64_t count) const {
  using Batch = xsimd::batch<float, Arch>;
  constexpr int64_t kLanes = static_cast<int64_t>(Batch::size);
  constexpr int64_t kStep = kLanes * kAccumulators;

  constexpr int kPerStream = kAccumulators / kStreams;
  static_assert(kPerStream * kStreams == kAccumulators, "each stream gets the same number of accumulators");
  constexpr int64_t kPrefetchFloats = kPrefetchBytes / static_cast<int64_t>(sizeof(float));

  Batch accumulators[kAccumulators];
  for (int i = 0; i < kAccumulators; ++i) accumulators[i] = Batch(0.0f);

  // kStreams streams of whole steps; the rest (under kStreams steps, plus a partial one) is the tail.
  constexpr int64_t kStreamStep = kLanes * kPerStream;
  const int64_t stream_length = count / kStreams / kStreamStep * kStreamStep;
  for (int64_t offset = 0; offset < stream_length; offset += kStreamStep) {
#pragma GCC unroll 4
    for (int stream = 0; stream < kStreams; ++stream) {
      const float* at = data + stream * stream_length + offset;
      // Past its own stream's end this touches the next stream's start, or at most kPrefetchBytes
      // past the part: a prefetch never faults. Into every level (T0), as the decode kernels ask:
      // on Intel Xeons a non-temporal hint (NTA) left this loop at 11-12 GB/s on 2 threads while
      // the decode kernel streamed 26, so every decode bandwidth fraction read above 2.
      __builtin_prefetch(at + kPrefetchFloats, 0, 3);
#pragma GCC unroll 4
      for (int i = 0; i < kPerStream; ++i) {
        accumulators[stream * kPerStream + i] += Batch::load_unaligned(at + i * kLanes);
      }
    }
  }
  int64_t index = stream_length * kStreams;
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
