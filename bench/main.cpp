// simdattn_bench: the standard shapes of docs/bench-shapes.md, for simdattn and its peers, with the
// machine's roofs measured first in the same run. See bench/README.md.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstdio>
#include <string>

#include "inputs.hpp"
#include "machine/fma_peak.hpp"
#include "machine/read_bandwidth.hpp"
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
  // What the decode benchmarks' copies of K and V total: bench/compare gives the peers as much.
  benchmark::AddCustomContext("cold_kv_bytes", std::to_string(simdattn::bench::read_buffer_bytes()));
  benchmark::AddCustomContext("decode_kv", simdattn::bench::decode_kv() == simdattn::bench::DecodeKv::cold
                                               ? "cold: a new copy of K and V each call"
                                               : "warm: the same K and V each call");
  benchmark::AddCustomContext("roof_isa", simdattn::bench::roof_isa().empty()
                                              ? "machine: the best instruction set of the CPU"
                                              : "library: " + simdattn::bench::roof_isa());
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
    register_precision_benchmarks(shape);
#ifdef SIMDATTN_BENCH_WITH_EIGEN
    register_eigen_benchmark(shape);
#endif
    register_stage_benchmarks(shape);
  }
  register_serving_benchmarks();
  register_merge_benchmarks();
  register_thread_scaling_benchmarks(standard_shape("encoder"));
}

// This binary's own flags, each with the values it accepts and what choosing one does.
struct OwnFlag {
  const char* prefix;
  const char* expected;
  bool (*apply)(const std::string& value);
};

bool apply_decode_kv(const std::string& value) {
  using namespace simdattn::bench;
  if (value != "cold" && value != "warm") return false;
  set_decode_kv(value == "cold" ? DecodeKv::cold : DecodeKv::warm);
  return true;
}

bool apply_roof_isa(const std::string& value) {
  using namespace simdattn::bench;
  if (value != "machine" && value != "library") return false;
  set_roof_isa(value == "machine" ? "" : simdattn::active_isa());
  return true;
}

constexpr OwnFlag kOwnFlags[] = {{"--decode_kv=", "cold or warm", apply_decode_kv},
                                 {"--roof_isa=", "machine or library", apply_roof_isa}};

// Takes this binary's own flags out of argv before Google Benchmark sees them; false (after
// saying why) when a value is not one the flag accepts.
bool take_own_flags(int* argc, char** argv) {
  int kept = 1;
  bool valid = true;
  for (int i = 1; i < *argc; ++i) {
    const std::string argument = argv[i];
    const OwnFlag* flag = nullptr;
    for (const OwnFlag& candidate : kOwnFlags) {
      if (argument.rfind(candidate.prefix, 0) == 0) flag = &candidate;
    }
    if (flag == nullptr) {
      argv[kept++] = argv[i];
      continue;
    }
    const std::string value = argument.substr(std::string(flag->prefix).size());
    if (!flag->apply(value)) {
      std::fprintf(stderr, "simdattn_bench: %.*s: expected %s, got '%s'\n",
                   static_cast<int>(std::string(flag->prefix).size() - 1), flag->prefix, flag->expected,
                   value.c_str());
      valid = false;
    }
  }
  *argc = kept;
  return valid;
}

}  // namespace

// --help: this binary's own flags first; Google Benchmark then prints its own and exits.
void print_own_flags_on_help(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string argument = argv[i];
    if (argument != "--help" && argument != "-h") continue;
    std::printf(
        "simdattn_bench: simdattn and its peers on the standard shapes (docs/bench-shapes.md), with the\n"
        "machine's FMA peak and read bandwidth measured in the same run. See bench/README.md.\n\n"
        "simdattn_bench's own flags:\n"
        "  --decode_kv=cold|warm     where decode shapes read K and V from: cold (default) cycles through\n"
        "                            copies totalling the read-bandwidth buffer, warm re-reads one copy\n"
        "  --roof_isa=machine|library  the FMA roof's instruction set: the CPU's best (default), or the\n"
        "                            one simdattn runs with (SIMDATTN_ISA caps it)\n\n"
        "Google Benchmark's flags:\n");
    return;
  }
}

int main(int argc, char** argv) {
  print_own_flags_on_help(argc, argv);
  if (!take_own_flags(&argc, argv)) return 1;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_benchmarks();
  add_run_context();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
