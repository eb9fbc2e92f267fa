// merge_states/<count>: simdattn::merge_attention_states over `count` states of one chunked
// prefill's output (B 1, H 32, S 4096, Dv 128, fp32: 64 MiB a state, with its lse), the work
// cascade attention and key shards across machines add to attention. It is a weighted sum, so it
// should run at memory speed: bandwidth_fraction counts the bytes read (every state and lse) and
// written (out and lse) once, over the read bandwidth of this run.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "aligned_buffer.hpp"
#include "counters.hpp"
#include "machine/roofs.hpp"
#include "registration.hpp"
#include "simdattn/simdattn.hpp"

namespace simdattn::bench {
namespace {

constexpr int64_t kHeads = 32, kRows = 4096, kValueDim = 128;

// A contiguous [1, kHeads, kRows, width] view.
template <class T>
BasicTensorView<T> contiguous(T* data, int64_t width) {
  return BasicTensorView<T>(data, {1, kHeads, kRows, width}, {kHeads * kRows * width, kRows * width, width, 1});
}

void run_merge(benchmark::State& state, int64_t count) {
  const int threads = default_threads();
  measure_roofs_first(threads, true);
  const int64_t values = kHeads * kRows * kValueDim, rows = kHeads * kRows;
  std::vector<AlignedFloats> outs, lses;
  std::vector<AnyConstTensorView> out_views;
  std::vector<ConstTensorView> lse_views;
  for (int64_t i = 0; i < count; ++i) {
    outs.emplace_back(values);
    lses.emplace_back(rows);
    fill_uniform(outs.back().data(), values, static_cast<uint32_t>(10 + i));
    fill_uniform(lses.back().data(), rows, static_cast<uint32_t>(100 + i));
    out_views.push_back(contiguous<const float>(outs.back().data(), kValueDim));
    lse_views.push_back(contiguous<const float>(lses.back().data(), 1));
  }
  AlignedFloats merged(values), merged_lse(rows);
  const TensorView out = contiguous(merged.data(), kValueDim);
  const TensorView lse = contiguous(merged_lse.data(), 1);
  const auto merge = [&] { merge_attention_states(out_views.data(), lse_views.data(), count, out, lse); };
  merge();  // the first touch of the outputs, outside the timing
  const double seconds = fastest_call_loop(state, merge);
  const double bytes = static_cast<double>((count + 1) * (values + rows)) * sizeof(float);
  report_traffic(state, bytes, seconds);
  state.counters["threads"] = threads;
  state.SetLabel(simdattn::active_isa());
}

}  // namespace

void register_merge_benchmarks() {
  for (const int64_t count : {2, 8}) {
    benchmark::RegisterBenchmark(("merge_states/" + std::to_string(count)).c_str(),
                                 [count](benchmark::State& state) { run_merge(state, count); })
        ->Unit(benchmark::kMillisecond);
  }
}

}  // namespace simdattn::bench
