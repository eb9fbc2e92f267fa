// attention/<shape>/simd, attention/<shape>/reference and attention/<shape>/simd/threads:N.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <string>

#include "counters.hpp"
#include "inputs.hpp"
#include "machine/roofs.hpp"
#include "registration.hpp"
#include "typed_inputs.hpp"
#include "simdattn/reference.hpp"
#include "simdattn/simdattn.hpp"

namespace simdattn::bench {

namespace {

// The scalar oracle is registered for a shape only if it should finish one call in about
// kReferenceSecondsBudget. Its speed is estimated, not measured (measuring would cost the time
// this avoids): plain loops accumulating in double run one dependent add per few cycles, about
// kReferenceFlopsPerSecond on the project's machines. The dense FLOPs are used, in case the
// oracle computes masked scores too. This keeps encoder and the decode shapes and drops prefill,
// prefill_gqa and long (35 s, 35 s and 9 min at that speed).
constexpr double kReferenceSecondsBudget = 20.0;
constexpr double kReferenceFlopsPerSecond = 1e9;
// The oracle runs on the calling thread alone.
constexpr int kReferenceThreads = 1;

AttentionOptions options_for(const Shape& shape, int num_threads) {
  AttentionOptions options;
  // Sq == Sk in every causal standard shape, so bottom-right and top-left are the same mask.
  options.causal = shape.causal ? Causal::bottom_right : Causal::none;
  options.num_threads = num_threads;
  return options;
}

double dense_flops(const Shape& shape) { return shape.causal ? 2.0 * shape.useful_flops() : shape.useful_flops(); }

// Times `attend` (a call of the shape's signature) on the shape's inputs and reports the counters;
// decode shapes cycle through their KV copies so each call reads its K and V from memory.
template <class Attend>
void run_attention(benchmark::State& state, const Shape& shape, int threads, Attend&& attend) {
  measure_roofs_first(threads, shape.is_decode());
  AttentionInputs& inputs = attention_inputs(shape);
  int64_t copy = 0;
  const double seconds = fastest_call_loop(state, [&] {
    attend(inputs.q(), inputs.k(copy), inputs.v(copy), inputs.out());
    copy = (copy + 1) % inputs.kv_copies();
  });
  report_compute(state, shape.useful_flops(), seconds, threads);
  if (shape.is_decode()) report_traffic(state, shape.kv_bytes(), seconds);
}

// simdattn::attention with num_threads (0: OpenMP's default).
void attention_simd(benchmark::State& state, const Shape& shape, int num_threads) {
  const AttentionOptions options = options_for(shape, num_threads);
  run_attention(state, shape, num_threads == 0 ? default_threads() : num_threads,
                [&](ConstTensorView q, ConstTensorView k, ConstTensorView v, TensorView out) {
                  simdattn::attention(q, k, v, out, options);
                });
  state.SetLabel(simdattn::active_isa());
}

void attention_reference(benchmark::State& state, const Shape& shape) {
  const AttentionOptions options = options_for(shape, 0);
  run_attention(state, shape, kReferenceThreads,
                [&](ConstTensorView q, ConstTensorView k, ConstTensorView v, TensorView out) {
                  simdattn::reference::attention(q, k, v, out, options);
                });
  state.SetLabel("scalar");
}

// simdattn::attention on the shape's inputs stored in `precision` (typed_inputs.hpp), OpenMP's
// default thread count. Decode shapes report the bandwidth of the bytes the cache really holds,
// scales included.
void attention_simd_typed(benchmark::State& state, const Shape& shape, const Precision& precision) {
  AttentionOptions options = options_for(shape, 0);
  const int threads = default_threads();
  measure_roofs_first(threads, shape.is_decode());
  TypedAttentionInputs& inputs = typed_attention_inputs(shape, precision);
  int64_t copy = 0;
  const double seconds = fastest_call_loop(state, [&] {
    if (precision.cache == DType::i8) {
      options.k_scale = inputs.k_scale(copy);
      options.v_scale = inputs.v_scale(copy);
    }
    simdattn::attention(inputs.q(), inputs.k(copy), inputs.v(copy), inputs.out(), options);
    copy = (copy + 1) % inputs.kv_copies();
  });
  report_compute(state, shape.useful_flops(), seconds, threads);
  if (shape.is_decode()) report_traffic(state, cache_bytes(shape, precision), seconds);
  state.SetLabel(std::string(simdattn::active_isa()) + ", " + precision.describes);
}

}  // namespace

void register_precision_benchmarks(const Shape& shape) {
  for (const Precision& precision : precisions()) {
    if (precision.decode_only && !shape.is_decode()) continue;
    benchmark::RegisterBenchmark(("attention/" + shape.name + "/simd-" + precision.name).c_str(),
                                 [shape, precision](benchmark::State& state) {
                                   attention_simd_typed(state, shape, precision);
                                 })
        ->Unit(benchmark::kMillisecond);
  }
}

void register_attention_benchmarks(const Shape& shape) {
  benchmark::RegisterBenchmark(("attention/" + shape.name + "/simd").c_str(),
                               [shape](benchmark::State& state) { attention_simd(state, shape, 0); })
      ->Unit(benchmark::kMillisecond);
  if (dense_flops(shape) / kReferenceFlopsPerSecond <= kReferenceSecondsBudget) {
    benchmark::RegisterBenchmark(("attention/" + shape.name + "/reference").c_str(),
                                 [shape](benchmark::State& state) { attention_reference(state, shape); })
        ->Unit(benchmark::kMillisecond);
  }
}

void register_thread_scaling_benchmarks(const Shape& shape) {
  for (int threads = 1; threads <= omp_get_num_procs(); ++threads) {
    benchmark::RegisterBenchmark(
        ("attention/" + shape.name + "/simd/threads:" + std::to_string(threads)).c_str(),
        [shape, threads](benchmark::State& state) { attention_simd(state, shape, threads); })
        ->Unit(benchmark::kMillisecond);
  }
}

}  // namespace simdattn::bench
