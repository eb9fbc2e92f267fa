// qk_scores/<shape>, softmax_rows/<shape> and weights_v/<shape>: the three stages on their own.
#include <benchmark/benchmark.h>

#include <cmath>
#include <string>

#include "counters.hpp"
#include "inputs.hpp"
#include "machine/roofs.hpp"
#include "registration.hpp"
#include "simdattn/simdattn.hpp"

namespace simdattn::bench {

namespace {

// The largest score matrix the stage benchmarks allocate: encoder's is 96 MiB, long's 8 GiB.
constexpr double kMaxScoreBytes = double(int64_t{1} << 30);

double score_bytes(const Shape& shape) {
  return static_cast<double>(shape.batch * shape.q_heads * shape.seq_q * shape.seq_k) * sizeof(float);
}

// One of the two matrix products: half of the shape's (dense) attention FLOPs.
double product_flops(const Shape& shape) { return shape.useful_flops() / 2.0; }

void qk_scores_stage(benchmark::State& state, const Shape& shape) {
  const int threads = default_threads();
  measure_roofs_first(threads, false);
  StageInputs& inputs = stage_inputs(shape);
  const float scale = 1.0f / std::sqrt(static_cast<float>(shape.head_dim));
  const double seconds = fastest_call_loop(state, [&] { simdattn::qk_scores(inputs.q(), inputs.k(), inputs.scores(), scale); });
  report_compute(state, product_flops(shape), seconds, threads);
  state.SetLabel(simdattn::active_isa());
}

// In place, so from the second call on it normalises already normalised rows: the same work on
// values in [0, 1] instead of [-1, 1], which no branch of a softmax depends on.
void softmax_rows_stage(benchmark::State& state, const Shape& shape) {
  StageInputs& inputs = stage_inputs(shape);
  const double seconds = fastest_call_loop(state, [&] { simdattn::softmax_rows(inputs.scores()); });
  // The least traffic: every score read once and written once.
  report_bytes(state, 2.0 * score_bytes(shape), seconds);
  if (!state.error_occurred()) state.counters["threads"] = default_threads();
  state.SetLabel(simdattn::active_isa());
}

void weights_v_stage(benchmark::State& state, const Shape& shape) {
  const int threads = default_threads();
  measure_roofs_first(threads, false);
  StageInputs& inputs = stage_inputs(shape);
  const double seconds = fastest_call_loop(state, [&] { simdattn::weights_v(inputs.scores(), inputs.v(), inputs.out()); });
  report_compute(state, product_flops(shape), seconds, threads);
  state.SetLabel(simdattn::active_isa());
}

}  // namespace

void register_stage_benchmarks(const Shape& shape) {
  if (shape.causal || shape.is_decode() || score_bytes(shape) > kMaxScoreBytes) return;
  benchmark::RegisterBenchmark(("qk_scores/" + shape.name).c_str(),
                               [shape](benchmark::State& state) { qk_scores_stage(state, shape); })
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark(("softmax_rows/" + shape.name).c_str(),
                               [shape](benchmark::State& state) { softmax_rows_stage(state, shape); })
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark(("weights_v/" + shape.name).c_str(),
                               [shape](benchmark::State& state) { weights_v_stage(state, shape); })
      ->Unit(benchmark::kMillisecond);
}

}  // namespace simdattn::bench
