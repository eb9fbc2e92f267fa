// One register-resident loop run on several OpenMP threads at once, timed as a whole: how the
// 16-bit roofs (bf16_peak.hpp, amx_peak.hpp) are measured.
#pragma once

#include <omp.h>

#include <atomic>
#include <chrono>
#include <cstdint>

namespace simdattn::bench {

struct ThreadedRun {
  double flops;    // summed over the threads
  double seconds;  // wall clock of the parallel region
  int threads;     // how many threads OpenMP gave
};

// loop(rounds_per_thread) on each of `threads` threads in one parallel region; each round is
// flops_per_round FLOPs. The loops' results are summed and kept observable, so that none is
// dropped.
template <class Loop>
ThreadedRun run_threaded_loop(int threads, int64_t rounds_per_thread, double flops_per_round, Loop loop) {
  std::atomic<int> team{0};
  float sink = 0.0f;
  const auto start = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
  {
    if (omp_get_thread_num() == 0) team = omp_get_num_threads();
    sink += loop(rounds_per_thread);
  }
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  if (sink == -1.0f) team = -1;
  return {flops_per_round * static_cast<double>(rounds_per_thread) * team.load(), elapsed.count(), team.load()};
}

}  // namespace simdattn::bench
