// A vectorised sum over a large array: the memory-read roof of one thread, per instruction set.
#pragma once

#include <cstdint>

#include "machine/machine_archs.hpp"

namespace simdattn::bench {

struct StreamSum {
  // Independent accumulators, so the adds never wait on each other and the loop is bound by how
  // fast memory delivers the data.
  static constexpr int kAccumulators = 8;
  // The part is read as this many contiguous streams side by side, as the decode kernel reads the
  // rows of K and of V (and a core's several heads) at once: one stream alone leaves part of the
  // memory system idle on some CPUs, and a roof must be as fast as the fastest kernel can read.
  static constexpr int kStreams = 4;
  // Each stream asks for the data this far ahead itself, as the decode kernel does
  // (kDecodePrefetchRows: 16 rows of 128 floats): the hardware prefetchers stop at every 4 KiB page.
  static constexpr int64_t kPrefetchBytes = 8192;

  // Σ data[0, count), reading every element once: kStreams contiguous quarters side by side, the
  // tail in order. Defined in stream_sum_impl.hpp,
  // instantiated once per ISA in machine_kernels_<isa>.cpp.
  template <class Arch>
  float operator()(Arch, const float* data, int64_t count) const;
};

extern template float StreamSum::operator()<xsimd::avx512f>(xsimd::avx512f, const float*, int64_t) const;
extern template float StreamSum::operator()<xsimd::fma3<xsimd::avx2>>(xsimd::fma3<xsimd::avx2>,
                                                                    const float*, int64_t) const;
extern template float StreamSum::operator()<xsimd::sse2>(xsimd::sse2, const float*, int64_t) const;

}  // namespace simdattn::bench
