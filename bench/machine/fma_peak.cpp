#include "machine/fma_peak.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>

#include "machine/fma_loop.hpp"

namespace simdattn::bench {

namespace {
// Runs long enough that timer resolution and the start of the threads are below 0.1 %.
constexpr double kMeasureRunSeconds = 0.02;
// Best of this many runs: a run can only be slowed down (another process, a frequency change), so
// the fastest is the closest to the machine's peak.
constexpr int kMeasureRuns = 5;

// Stored after every run so the compiler must compute the checksums, hence the loops.
std::atomic<float> checksum_sink{0.0f};

std::string& roof_isa_setting() {
  static std::string isa;
  return isa;
}

// FmaLoop with the instruction set roof_isa() names: the library's avx512bf16 and amx compute
// their fp32 on AVX-512's FMAs.
FmaLoopResult run_named_fma_loop(const std::string& isa, int64_t rounds) {
  if (isa == "avx512" || isa == "avx512bf16" || isa == "amx") return FmaLoop{}(xsimd::avx512f{}, rounds);
  if (isa == "avx2") return FmaLoop{}(xsimd::fma3<xsimd::avx2>{}, rounds);
  return FmaLoop{}(xsimd::sse2{}, rounds);
}
}  // namespace

void set_roof_isa(const std::string& isa) { roof_isa_setting() = isa; }

const std::string& roof_isa() { return roof_isa_setting(); }

FmaRun run_fma_loop(int threads, int64_t rounds_per_thread) {
  // The dispatcher checks CPUID once; it holds no state that calls could race on.
  static auto fma_loop = xsimd::dispatch<MachineArchs>(FmaLoop{});
  double flops = 0.0;
  float checksum = 0.0f;
  int threads_used = 0;
  const char* arch_name = "";
  const auto start = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : flops, checksum)
  {
    const FmaLoopResult result =
        roof_isa().empty() ? fma_loop(rounds_per_thread) : run_named_fma_loop(roof_isa(), rounds_per_thread);
    flops += result.flops;
    checksum += result.checksum;
#pragma omp master
    {
      threads_used = omp_get_num_threads();
      arch_name = result.arch_name;
    }
  }
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  checksum_sink.store(checksum, std::memory_order_relaxed);
  return {flops, elapsed.count(), threads_used, arch_name};
}

double measure_fma_peak_gflops(int threads) {
  // Grow the round count until one run lasts kMeasureRunSeconds, then keep the best of a few.
  int64_t rounds = int64_t{1} << 14;
  FmaRun run = run_fma_loop(threads, rounds);
  while (run.seconds < kMeasureRunSeconds) {
    rounds *= 2;
    run = run_fma_loop(threads, rounds);
  }
  double best_gflops = run.flops / run.seconds / 1e9;
  for (int i = 1; i < kMeasureRuns; ++i) {
    run = run_fma_loop(threads, rounds);
    best_gflops = std::max(best_gflops, run.flops / run.seconds / 1e9);
  }
  return best_gflops;
}

}  // namespace simdattn::bench
