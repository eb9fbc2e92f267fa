// Run once at configure time (bench/eigen_peer.cmake): prints the best instruction set of the
// configuring machine among those the Eigen peer can be built for.
#include <cstdio>

int main() {
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("fma")) {
    std::puts("avx512");
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    std::puts("avx2");
  } else {
    std::puts("sse2");
  }
  return 0;
}
