#include "machine/bf16_peak.hpp"

#include <immintrin.h>

namespace simdattn::bench {

namespace {

// Independent accumulators, so that the loop measures throughput, not latency.
constexpr int kAccumulators = 24;  // latency 5-6 cycles on up to two ports, with margin

// The loop itself, compiled for AVX512_BF16 through the target attribute: this file needs no
// flag, and the function runs only after cpu_has_avx512_bf16(). The accumulators converge
// (acc += 2 · 2^-10 · 2^-10 per round stays far from overflow) and stay normal numbers.
[[gnu::target("avx512f,avx512bf16"), gnu::noinline]] float bf16_loop(int64_t rounds) {
  const __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(0x1p-10f), _mm512_set1_ps(0x1p-10f));
  const __m512bh b = _mm512_cvtne2ps_pbh(_mm512_set1_ps(0x1p-10f), _mm512_set1_ps(0x1p-10f));
  __m512 acc[kAccumulators];
  for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  for (int64_t round = 0; round < rounds; ++round) {
#pragma GCC unroll 24
    for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  }
  __m512 total = acc[0];
  for (int i = 1; i < kAccumulators; ++i) total = _mm512_add_ps(total, acc[i]);
  // Through memory: g++ 12's _mm512_reduce_add_ps trips its own -Wuninitialized.
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, total);
  float sum = 0.0f;
  for (float lane : lanes) sum += lane;
  return sum;
}

}  // namespace

bool cpu_has_avx512_bf16() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512f");
}

ThreadedRun run_bf16_loop(int threads, int64_t rounds_per_thread) {
  return run_threaded_loop(threads, rounds_per_thread, 64.0 * kAccumulators, bf16_loop);
}

}  // namespace simdattn::bench
