// simdattn_bench_kernels: the tiles' building blocks alone, on every ISA the CPU runs, with rate
// counters: the micro-kernels of Q·Kᵀ and P·V at one key block of a 64-column tile, one block of
// the online softmax, and exp2. What a change to one kernel does to it, without the rest of
// attention() around it (simdattn_bench measures whole shapes). Built with the tests, since it
// reaches the internal kernels through simdattn_testable.
//
//   simdattn_bench_kernels [--benchmark_filter=kernels/gemm_qk]
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "dispatch.hpp"
#include "isa/registry.hpp"
#include "kernels/tile_kernels.hpp"

namespace {

using simdattn::detail::Isa;

struct Free {
  void operator()(float* p) const { std::free(p); }
};
std::unique_ptr<float, Free> aligned_floats(int64_t count, float value) {
  auto* data = static_cast<float*>(std::aligned_alloc(64, static_cast<size_t>(count + 16) / 16 * 64));
  std::fill(data, data + count, value);
  return std::unique_ptr<float, Free>(data);
}

// One key block of a fused tile: 256 keys, head_dim 128, 64 columns (the ISA's widest panel that
// fits). Q·Kᵀ: A = K rows (row-major); P·V: A = Vᵀ (a_row_stride 1), accumulating.
constexpr int64_t kKeys = 256, kDepth = 128, kColumns = 64;

void gemm(benchmark::State& state, Isa isa, bool values) {
  const simdattn::detail::BlockingSizes blocking = simdattn::detail::blocking_for(isa);
  int panel_vectors = 1;
  while (panel_vectors < blocking.wide_vectors && kColumns > panel_vectors * blocking.vector_floats) {
    panel_vectors *= 2;
  }
  const int64_t rows = values ? kDepth : kKeys, depth = values ? kKeys : kDepth;
  auto a = aligned_floats(kKeys * kDepth, 0.5f), b = aligned_floats(depth * kColumns, 0.25f),
       c = aligned_floats(rows * kColumns, 0.0f);
  const simdattn::detail::GemmBlockKernel kernel{values, panel_vectors};
  for (auto _ : state) {
    simdattn::detail::run_for_isa(isa, kernel, rows, kColumns, depth, a.get(),
                                  values ? int64_t{1} : kDepth, values ? kDepth : int64_t{1},
                                  b.get(), kColumns, c.get(), kColumns, nullptr);
    benchmark::DoNotOptimize(c.get());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * rows * depth * kColumns * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

void online_softmax(benchmark::State& state, Isa isa) {
  auto scores = aligned_floats(kKeys * kColumns, -1.0f), max = aligned_floats(kColumns, 0.0f),
       sum = aligned_floats(kColumns, 0.0f), correction = aligned_floats(kColumns, 0.0f);
  for (auto _ : state) {
    // Fresh logits each time (exp would otherwise shrink them to 1s): the refill is part of the time.
    std::fill(scores.get(), scores.get() + kKeys * kColumns, -1.0f);
    simdattn::detail::run_for_isa(isa, simdattn::detail::OnlineSoftmaxKernel{}, scores.get(), kKeys,
                                  kColumns, max.get(), sum.get(), correction.get(), nullptr);
    benchmark::DoNotOptimize(sum.get());
  }
  state.counters["elements/s"] = benchmark::Counter(double(kKeys * kColumns),
                                                    benchmark::Counter::kIsIterationInvariantRate);
}

void exp2(benchmark::State& state, Isa isa) {
  constexpr int64_t kCount = 4096;
  auto in = aligned_floats(kCount, -3.7f), out = aligned_floats(kCount, 0.0f);
  for (auto _ : state) {
    simdattn::detail::run_for_isa(isa, simdattn::detail::ExpArray{true}, in.get(), out.get(), kCount);
    benchmark::DoNotOptimize(out.get());
  }
  state.counters["elements/s"] =
      benchmark::Counter(double(kCount), benchmark::Counter::kIsIterationInvariantRate);
}

const bool registered = [] {
  for (Isa isa : simdattn::detail::supported_isas()) {
    const std::string name = simdattn::detail::isa_name(isa);
    // Rates per second of wall time: on a shared machine CPU time hides the waits.
    benchmark::RegisterBenchmark(("kernels/gemm_qk/" + name).c_str(), gemm, isa, false)->UseRealTime();
    benchmark::RegisterBenchmark(("kernels/gemm_pv/" + name).c_str(), gemm, isa, true)->UseRealTime();
    benchmark::RegisterBenchmark(("kernels/online_softmax/" + name).c_str(), online_softmax, isa)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("kernels/exp2/" + name).c_str(), exp2, isa)->UseRealTime();
  }
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
