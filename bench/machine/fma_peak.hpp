// The machine's fp32 FMA peak: FmaLoop on several OpenMP threads at once.
#pragma once

#include <cstdint>
#include <string>

namespace simdattn::bench {

struct FmaRun {
  double flops;           // summed over the threads
  double seconds;         // wall clock, from before the threads start to after the last ends
  int threads;            // how many threads OpenMP actually gave
  const char* arch_name;  // the instruction set FmaLoop ran with
};

// Rounds of FmaLoop that take a few milliseconds on any CPU of the last decade: long enough to
// dwarf the start of a parallel region, short enough for Google Benchmark to pick a count.
inline constexpr int64_t kFmaRoundsPerCall = int64_t{1} << 21;

// The instruction set the FMA roof is measured with: by default ("") the best this CPU has, the
// machine's peak; after set_roof_isa("avx2") (or "avx512", "sse2") that one, so that a run with
// simdattn capped to AVX2 on an AVX-512 CPU reports fractions of an AVX2 machine's peak.
void set_roof_isa(const std::string& isa);
const std::string& roof_isa();

// Runs FmaLoop for rounds_per_thread rounds on each of `threads` threads in one parallel region,
// with the instruction set roof_isa() names.
FmaRun run_fma_loop(int threads, int64_t rounds_per_thread);

// The best GFLOP/s of a few runs of about 20 ms each on `threads` threads: the peak measured
// lazily when machine/fma_peak did not run (a filter excluded it) or ran on another thread count.
double measure_fma_peak_gflops(int threads);

}  // namespace simdattn::bench
