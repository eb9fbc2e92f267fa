// The counters every benchmark of this binary reports, computed from wall-clock time.
//
// Why not Google Benchmark's UseRealTime() and rate counters: UseRealTime(), MinTime() and
// Iterations() append "/real_time", "/min_time:…" and "/iterations:…" to the benchmark's name, and
// the names must be exactly those of docs/bench-shapes.md. Rate counters without UseRealTime() divide
// by the main thread's CPU time. So each benchmark times its own loop with a steady clock (the
// same span Google Benchmark's real_time column covers) and reports plain counters.
#pragma once

#include <benchmark/benchmark.h>

#include <chrono>
#include <exception>
#include <utility>

namespace simdattn::bench {

// Runs body() once; an exception from it (say, the library rejecting an option it does not
// support yet) ends the benchmark with SkipWithError and its message. Returns whether it ran.
template <class Body>
bool run_one_call(benchmark::State& state, Body& body) {
  try {
    body();
    return true;
  } catch (const std::exception& error) {
    state.SkipWithError(error.what());
    return false;
  }
}

// Runs body() once per benchmark iteration and returns the wall-clock seconds of the whole loop;
// callers check state.error_occurred().
template <class Body>
double timed_loop(benchmark::State& state, Body&& body) {
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    if (!run_one_call(state, body)) break;
  }
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  return elapsed.count();
}

// Like timed_loop, but returns the fastest call's seconds times the number of iterations: the
// counters then describe the fastest call, as the roofs do (roof_*) and as PyTorch's peer does
// (best of its calls). Another process on a shared machine can only slow a call down, so the
// fastest call is the one closest to what the code itself costs; the Time column keeps the mean.
template <class Body>
double fastest_call_loop(benchmark::State& state, Body&& body) {
  double fastest = 0.0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    if (!run_one_call(state, body)) break;
    const std::chrono::duration<double> call = std::chrono::steady_clock::now() - start;
    if (fastest == 0.0 || call.count() < fastest) fastest = call.count();
  }
  return fastest * static_cast<double>(state.iterations());
}

// Measures the roofs this benchmark's fractions will divide by, unless this run already has them.
// Call it before making the inputs: the lazy bandwidth measurement allocates a GiB or more, and
// should not do so while a decode shape's KV pool is also held.
void measure_roofs_first(int threads, bool needs_bandwidth);

// gflops (useful GFLOP per second of wall time), peak_fraction (gflops over the FMA peak of
// `threads` threads measured in this run) and threads.
void report_compute(benchmark::State& state, double flops_per_iteration, double seconds, int threads);

// gbytes_per_second: bytes_per_iteration per second of wall time, in 10^9 bytes per second.
void report_bytes(benchmark::State& state, double bytes_per_iteration, double seconds);

// bandwidth_fraction: bytes_per_iteration per second over the read bandwidth measured in this run,
// and gbytes_per_second, the same rate in 10^9 bytes per second.
void report_traffic(benchmark::State& state, double bytes_per_iteration, double seconds);

}  // namespace simdattn::bench
