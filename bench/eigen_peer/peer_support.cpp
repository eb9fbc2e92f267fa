// Compiled without extra instruction-set flags: it decides whether the peer may run at all, so
// it must itself run on any x86-64 CPU.
#include <cstring>

#include "eigen_peer/attention_eigen.hpp"

#if !defined(SIMDATTN_BENCH_PEER_ISA) || !defined(SIMDATTN_BENCH_PEER_EIGEN_VERSION)
#error "bench/eigen_peer.cmake defines the peer's instruction set and Eigen version"
#endif

namespace simdattn::bench {

const char* eigen_peer_isa() { return SIMDATTN_BENCH_PEER_ISA; }

const char* eigen_peer_description() {
  return "eigen " SIMDATTN_BENCH_PEER_EIGEN_VERSION " " SIMDATTN_BENCH_PEER_ISA;
}

bool eigen_peer_runs_here() {
  const char* isa = eigen_peer_isa();
  if (std::strcmp(isa, "avx512") == 0) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("fma");
  }
  if (std::strcmp(isa, "avx2") == 0) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return std::strcmp(isa, "sse2") == 0;
}

}  // namespace simdattn::bench
