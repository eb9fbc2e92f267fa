// simdattn_bench: the standard shapes of bench-shapes.md, for simdattn and its peers, with the
// machine's roofs measured first in the same run. See bench/README.md.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstdio>
#include <string>

#include "inputs.hpp"
#include "machine/roofs.hpp"
#include "registration.hpp"
#include "shapes.hpp"
#include "simdattn/simdattn.hpp"

#ifdef SIMDATTN_BENCH_WITH_EIGEN
#include "eigen_peer/attention_eigen.hpp"
#endif

namespace {

// What the report script needs to know about the run besides the figures; it lands in the
// "context" object of --benchmark_format=json.
void add_run_context() {
  using simdattn::bench::default_threads;
  benchmark::AddCustomContext("simdattn_version", simdattn::version());
  benchmark::AddCustomContext("simdattn_isa", simdattn::active_isa());
  benchmark::AddCustomContext("default_threads", std::to_string(default_threads()));
  benchmark::AddCustomContext("processors", std::to_string(omp_get_num_procs()));
  benchmark::AddCustomContext("decode_kv", simdattn::bench::decode_kv() == simdattn::bench::DecodeKv::cold
                                               ? "cold: a new copy of K and V each call"
                                               : "warm: the same K and V each call");
#ifdef SIMDATTN_BENCH_WITH_EIGEN
  using namespace simdattn::bench;
  benchmark::AddCustomContext("eigen_peer", eigen_peer_runs_here()
                                                ? std::string(eigen_peer_description())
                                                : std::string("skipped: built for ") + eigen_peer_isa() +
                                                      ", which this CPU lacks");
#else
  benchmark::AddCustomContext("eigen_peer", "not built: Eigen3 was not found");
#endif
}

// In the order they run: the roofs first, then each shape with every implementation, then the
// thread scaling.
void register_benchmarks() {
  using namespace simdattn::bench;
  register_machine_benchmarks();
  for (const Shape& shape : standard_shapes()) {
    register_attention_benchmarks(shape);
#ifdef SIMDATTN_BENCH_WITH_EIGEN
    register_eigen_benchmark(shape);
#endif
    register_stage_benchmarks(shape);
  }
  register_thread_scaling_benchmarks(standard_shape("encoder"));
}

// Takes this binary's own flag, --decode_kv=cold|warm, out of argv before Google Benchmark sees
// it; false (after saying why) when its value is neither.
bool take_decode_kv_flag(int* argc, char** argv) {
  const std::string prefix = "--decode_kv=";
  int kept = 1;
  bool valid = true;
  for (int i = 1; i < *argc; ++i) {
    const std::string argument = argv[i];
    if (argument.rfind(prefix, 0) != 0) {
      argv[kept++] = argv[i];
      continue;
    }
    const std::string value = argument.substr(prefix.size());
    if (value == "cold") {
      simdattn::bench::set_decode_kv(simdattn::bench::DecodeKv::cold);
    } else if (value == "warm") {
      simdattn::bench::set_decode_kv(simdattn::bench::DecodeKv::warm);
    } else {
      std::fprintf(stderr, "simdattn_bench: --decode_kv: expected cold or warm, got '%s'\n", value.c_str());
      valid = false;
    }
  }
  *argc = kept;
  return valid;
}

}  // namespace

int main(int argc, char** argv) {
  if (!take_decode_kv_flag(&argc, argv)) return 1;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_benchmarks();
  add_run_context();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
