// machine/fma_peak and machine/read_bandwidth: the roofs every fraction of this run divides by.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>

#include "counters.hpp"
#include "machine/fma_peak.hpp"
#include "machine/read_bandwidth.hpp"
#include "machine/roofs.hpp"
#include "memory_slot.hpp"
#include "registration.hpp"

namespace simdattn::bench {

namespace {

// The FMA loop on OpenMP's default thread count: the peak of the threads attention uses.
void fma_peak(benchmark::State& state) {
  const int threads = default_threads();
  double flops = 0.0;
  FmaRun last{};
  const double seconds = timed_loop(state, [&] {
    last = run_fma_loop(threads, kFmaRoundsPerCall);
    flops += last.flops;
  });
  if (state.error_occurred()) return;
  const double gflops = flops / seconds / 1e9;
  record_fma_peak(threads, gflops);
  state.counters["gflops"] = gflops;
  state.counters["threads"] = last.threads;
  state.SetLabel(last.arch_name);
}

// Sums a buffer of read_buffer_bytes() on all threads; the buffer stays in the shared slot while
// Google Benchmark calls this function again for its iteration counts.
void read_bandwidth(benchmark::State& state) {
  const int threads = default_threads();
  const ReadBuffer& buffer = large_data_slot().get_or_make<ReadBuffer>(
      "machine/read_bandwidth", [&] { return std::make_unique<ReadBuffer>(read_buffer_bytes(), threads); });
  const double seconds = timed_loop(state, [&] { buffer.sum(); });
  if (state.error_occurred()) return;
  const double bytes_per_second =
      static_cast<double>(buffer.bytes()) * static_cast<double>(state.iterations()) / seconds;
  record_read_bandwidth(bytes_per_second);
  state.counters["bytes_per_second"] = bytes_per_second;
  state.counters["gbytes_per_second"] = bytes_per_second / 1e9;
  state.counters["threads"] = threads;
  state.SetLabel(std::to_string(buffer.bytes() >> 20) + " MiB");
}

}  // namespace

void register_machine_benchmarks() {
  benchmark::RegisterBenchmark("machine/fma_peak", fma_peak)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("machine/read_bandwidth", read_bandwidth)->Unit(benchmark::kMillisecond);
}

}  // namespace simdattn::bench
