// Each benchmark family registers itself through one of these; main() calls them in the order
// the benchmarks should run (Google Benchmark runs them in registration order).
#pragma once

#include "shapes.hpp"

namespace simdattn::bench {

// machine/fma_peak, then machine/read_bandwidth: first, so every later fraction uses them.
void register_machine_benchmarks();

// attention/<shape>/simd, and attention/<shape>/reference where the scalar oracle finishes in
// reasonable time.
void register_attention_benchmarks(const Shape& shape);

// attention/<shape>/simd-<precision> for every precision of typed_inputs.hpp that the shape
// runs: bf16 and fp16 everywhere, 16-bit and int8 caches under fp32 queries on decode shapes.
void register_precision_benchmarks(const Shape& shape);

// attention/<shape>/eigen, when this CPU runs the instruction set the peer was built for.
void register_eigen_benchmark(const Shape& shape);

// qk_scores/<shape>, softmax_rows/<shape> and weights_v/<shape>, for the shapes whose whole score
// matrix the three separate stages can hold (non-causal, not decode, scores of at most 1 GiB).
void register_stage_benchmarks(const Shape& shape);

// attention/<shape>/simd/threads:N for N from 1 to the processors OpenMP sees.
void register_thread_scaling_benchmarks(const Shape& shape);

// serving/<shape>/<layout>: the serving shapes (packed and paged batches) in each layout that
// holds the same keys (bench_serving.cpp).
void register_serving_benchmarks();

// merge_states/<count>: merge_attention_states over `count` states of a chunked prefill's output
// (bench_merge.cpp).
void register_merge_benchmarks();

}  // namespace simdattn::bench
