// attention/<shape>/eigen: the Eigen peer on the same inputs as attention/<shape>/simd.
#include <benchmark/benchmark.h>

#include <cmath>

#include "counters.hpp"
#include "eigen_peer/attention_eigen.hpp"
#include "inputs.hpp"
#include "machine/roofs.hpp"
#include "registration.hpp"

namespace simdattn::bench {

namespace {

void attention_eigen(benchmark::State& state, const Shape& shape) {
  const int threads = default_threads();
  measure_roofs_first(threads, shape.is_decode());
  AttentionInputs& inputs = attention_inputs(shape);
  const float scale = 1.0f / std::sqrt(static_cast<float>(shape.head_dim));
  int64_t copy = 0;
  const double seconds = fastest_call_loop(state, [&] {
    eigen_attention(inputs.q(), inputs.k(copy), inputs.v(copy), inputs.out(), scale, shape.causal);
    copy = (copy + 1) % inputs.kv_copies();
  });
  report_compute(state, shape.useful_flops(), seconds, threads);
  if (shape.is_decode()) report_traffic(state, shape.kv_bytes(), seconds);
  state.SetLabel(eigen_peer_description());
}

}  // namespace

void register_eigen_benchmark(const Shape& shape) {
  if (!eigen_peer_runs_here()) return;  // main() notes the reason in the run's context
  benchmark::RegisterBenchmark(("attention/" + shape.name + "/eigen").c_str(),
                               [shape](benchmark::State& state) { attention_eigen(state, shape); })
      ->Unit(benchmark::kMillisecond);
}

}  // namespace simdattn::bench
