#include "counters.hpp"

#include "machine/roofs.hpp"

namespace simdattn::bench {

void measure_roofs_first(int threads, bool needs_bandwidth) {
  fma_peak_gflops(threads);
  if (needs_bandwidth) read_bandwidth_bytes_per_second();
}

void report_compute(benchmark::State& state, double flops_per_iteration, double seconds, int threads) {
  if (state.error_occurred() || seconds <= 0.0) return;
  // Normally measured already by measure_roofs_first(); if not, now, after the loop was timed.
  const double peak_gflops = fma_peak_gflops(threads);
  const double gflops = flops_per_iteration * static_cast<double>(state.iterations()) / seconds / 1e9;
  state.counters["call_ms"] = seconds / static_cast<double>(state.iterations()) * 1e3;
  state.counters["gflops"] = gflops;
  state.counters["peak_fraction"] = gflops / peak_gflops;
  state.counters["threads"] = threads;
}

void report_bytes(benchmark::State& state, double bytes_per_iteration, double seconds) {
  if (state.error_occurred() || seconds <= 0.0) return;
  state.counters["gbytes_per_second"] = bytes_per_iteration * static_cast<double>(state.iterations()) / seconds / 1e9;
  state.counters["call_ms"] = seconds / static_cast<double>(state.iterations()) * 1e3;
}

void report_traffic(benchmark::State& state, double bytes_per_iteration, double seconds) {
  if (state.error_occurred() || seconds <= 0.0) return;
  report_bytes(state, bytes_per_iteration, seconds);
  const double bytes_per_second = bytes_per_iteration * static_cast<double>(state.iterations()) / seconds;
  state.counters["bandwidth_fraction"] = bytes_per_second / read_bandwidth_bytes_per_second();
}

}  // namespace simdattn::bench
