// machine/fma_peak and machine/read_bandwidth: the roofs every fraction of this run divides by.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>

#include "counters.hpp"
#include "machine/amx_peak.hpp"
#include "machine/bf16_peak.hpp"
#include "machine/fma_peak.hpp"
#include "machine/read_bandwidth.hpp"
#include "machine/roofs.hpp"
#include "memory_slot.hpp"
#include "registration.hpp"

namespace simdattn::bench {

namespace {

// The FMA loop on OpenMP's default thread count: the peak of the threads attention uses.
// The roof kept for the fractions is the fastest single call, not the mean: another process can
// only slow a call down, so on a shared machine the best call is the closest to the peak, and a
// roof taken from a disturbed mean would let later fractions pass 1.
void fma_peak(benchmark::State& state) {
  const int threads = default_threads();
  double flops = 0.0;
  double best_gflops = 0.0;
  FmaRun last{};
  const double seconds = timed_loop(state, [&] {
    last = run_fma_loop(threads, kFmaRoundsPerCall);
    flops += last.flops;
    best_gflops = std::max(best_gflops, last.flops / last.seconds / 1e9);
  });
  if (state.error_occurred()) return;
  record_fma_peak(threads, best_gflops);
  state.counters["gflops"] = flops / seconds / 1e9;
  state.counters["roof_gflops"] = fma_peak_gflops(threads);
  state.counters["threads"] = last.threads;
  state.SetLabel(last.arch_name);
}

// A 16-bit roof on OpenMP's default thread count, where `usable` (else the benchmark says `why_not`
// and reports nothing): the bf16 dot-product loop (bf16_peak.hpp) and the AMX tile loop
// (amx_peak.hpp). Like the FMA peak, the roof is the fastest call. Not roof_gflops: the report
// takes every roof_gflops for the fp32 FMA peak; it divides the 16-bit rows by the highest of the
// 16-bit roofs and the FMA peak (bench/report/results.py).
void sixteen_bit_peak(benchmark::State& state, bool usable, const char* why_not,
                      ThreadedRun (*run)(int, int64_t), int64_t rounds, const char* label) {
  if (!usable) {
    state.SkipWithError(why_not);
    return;
  }
  const int threads = default_threads();
  double flops = 0.0;
  double best_gflops = 0.0;
  ThreadedRun last{};
  const double seconds = timed_loop(state, [&] {
    last = run(threads, rounds);
    flops += last.flops;
    best_gflops = std::max(best_gflops, last.flops / last.seconds / 1e9);
  });
  if (state.error_occurred()) return;
  state.counters["gflops"] = flops / seconds / 1e9;
  state.counters["bf16_roof_gflops"] = best_gflops;
  state.counters["threads"] = last.threads;
  state.SetLabel(label);
}

void bf16_peak(benchmark::State& state) {
  sixteen_bit_peak(state, cpu_has_avx512_bf16(), "this CPU has no AVX512_BF16 (vdpbf16ps): no bf16 roof",
                   run_bf16_loop, kFmaRoundsPerCall, "avx512_bf16 vdpbf16ps");
}

void amx_peak(benchmark::State& state) {
  sixteen_bit_peak(state, cpu_has_amx_bf16(), "this CPU or OS gives no AMX-BF16 tiles: no AMX roof",
                   run_amx_loop, kAmxRoundsPerCall, "amx_bf16 tdpbf16ps");
}

// Sums a buffer of read_buffer_bytes() on all threads; the buffer stays in the shared slot while
// Google Benchmark calls this function again for its iteration counts. As for the peak, the roof
// kept is the fastest: the fastest slice of any pass (read_bandwidth.hpp says why a slice).
void read_bandwidth(benchmark::State& state) {
  const int threads = default_threads();
  const ReadBuffer& buffer = large_data_slot().get_or_make<ReadBuffer>(
      "machine/read_bandwidth", [&] { return std::make_unique<ReadBuffer>(read_buffer_bytes(), threads); });
  const double bytes = static_cast<double>(buffer.bytes());
  double best_bytes_per_second = 0.0;
  const double seconds = timed_loop(state, [&] {
    double slice_rate = 0.0;
    buffer.sum(&slice_rate);
    best_bytes_per_second = std::max(best_bytes_per_second, slice_rate);
  });
  if (state.error_occurred()) return;
  record_read_bandwidth(best_bytes_per_second);
  const double bytes_per_second = bytes * static_cast<double>(state.iterations()) / seconds;
  state.counters["bytes_per_second"] = bytes_per_second;
  state.counters["gbytes_per_second"] = bytes_per_second / 1e9;
  state.counters["roof_gbytes_per_second"] = read_bandwidth_bytes_per_second() / 1e9;
  state.counters["threads"] = threads;
  state.SetLabel(std::to_string(buffer.bytes() >> 20) + " MiB");
}

}  // namespace

void register_machine_benchmarks() {
  benchmark::RegisterBenchmark("machine/fma_peak", fma_peak)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("machine/read_bandwidth", read_bandwidth)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("machine/bf16_peak", bf16_peak)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("machine/amx_peak", amx_peak)->Unit(benchmark::kMillisecond);
}

}  // namespace simdattn::bench
