// A register-resident loop of FMAs: the compute roof of one thread, per instruction set.
#pragma once

#include <cstdint>

#include "machine/machine_archs.hpp"

namespace simdattn::bench {

struct FmaLoopResult {
  double flops;          // 2 per lane per FMA executed
  float checksum;        // depends on every accumulator, so the loop cannot be optimised away
  const char* arch_name; // xsimd's name of the instruction set that ran
};

struct FmaLoop {
  // Independent accumulators: an FMA has 4 cycles of latency and 2 ports issue one each per cycle
  // on Zen 3, Skylake-X and Sapphire Rapids, so 8 chains keep both busy; 12 leave a margin and,
  // with the two constants, still fit the 16 registers of AVX2.
  static constexpr int kAccumulators = 12;

  // Runs `rounds` rounds of kAccumulators independent vector FMAs on the calling thread.
  // Defined in fma_loop_impl.hpp, instantiated once per ISA in machine_kernels_<isa>.cpp.
  template <class Arch>
  FmaLoopResult operator()(Arch, int64_t rounds) const;
};

extern template FmaLoopResult FmaLoop::operator()<xsimd::avx512f>(xsimd::avx512f, int64_t) const;
extern template FmaLoopResult FmaLoop::operator()<xsimd::fma3<xsimd::avx2>>(xsimd::fma3<xsimd::avx2>,
                                                                          int64_t) const;
extern template FmaLoopResult FmaLoop::operator()<xsimd::sse2>(xsimd::sse2, int64_t) const;

}  // namespace simdattn::bench
