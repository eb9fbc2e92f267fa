// simdattn_bench: the standard shapes of bench-shapes.md, for simdattn and its peers, with the
// machine's roofs measured first in the same run. See bench/README.md.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <string>

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

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_benchmarks();
  add_run_context();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
