// The machine's bf16 dot-product peak: a register-resident loop of AVX512_BF16's vdpbf16ps
// (16 fp32 lanes, each += a0·b0 + a1·b1 of bf16 pairs: 64 FLOPs an instruction) on several
// OpenMP threads, beside the fp32 FMA peak, where the CPU has the instruction.
#pragma once

#include <cstdint>

#include "machine/threaded_loop.hpp"

namespace simdattn::bench {

// Whether this CPU executes vdpbf16ps (CPUID leaf 7, subleaf 1, EAX bit 5) and the OS saves the
// AVX-512 state.
bool cpu_has_avx512_bf16();

// rounds_per_thread rounds of the loop on each of `threads` threads; only where
// cpu_has_avx512_bf16().
ThreadedRun run_bf16_loop(int threads, int64_t rounds_per_thread);

}  // namespace simdattn::bench
