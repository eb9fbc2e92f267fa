#include "machine/roofs.hpp"

#include <omp.h>

#include <algorithm>
#include <map>

#include "machine/fma_peak.hpp"
#include "machine/read_bandwidth.hpp"

namespace simdattn::bench {

namespace {
// Benchmarks run one at a time on the main thread, so these need no lock.
std::map<int, double>& peaks_by_threads() {
  static std::map<int, double> peaks;
  return peaks;
}

double& recorded_read_bandwidth() {
  static double bytes_per_second = 0.0;
  return bytes_per_second;
}
}  // namespace

double fma_peak_gflops(int threads) {
  auto& peaks = peaks_by_threads();
  const auto found = peaks.find(threads);
  if (found != peaks.end()) return found->second;
  const double measured = measure_fma_peak_gflops(threads);
  peaks[threads] = measured;
  return measured;
}

void record_fma_peak(int threads, double gflops) {
  double& peak = peaks_by_threads()[threads];
  peak = std::max(peak, gflops);
}

double read_bandwidth_bytes_per_second() {
  double& recorded = recorded_read_bandwidth();
  if (recorded == 0.0) recorded = measure_read_bandwidth(default_threads());
  return recorded;
}

void record_read_bandwidth(double bytes_per_second) {
  double& recorded = recorded_read_bandwidth();
  recorded = std::max(recorded, bytes_per_second);
}

int default_threads() { return omp_get_max_threads(); }

}  // namespace simdattn::bench
