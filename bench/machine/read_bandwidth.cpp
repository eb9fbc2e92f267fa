#include "machine/read_bandwidth.hpp"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>

#include "machine/stream_sum.hpp"

namespace simdattn::bench {

namespace {
constexpr int64_t kMinBufferBytes = int64_t{1} << 30;
// Four times the last-level cache: a streaming pass over twice the cache already misses it on every
// line; four leaves room for caches that keep part of a stream. Capped so that the buffer (and the
// decode benchmarks' copies of K and V, which total the same) never asks for more than 2 GiB.
constexpr int64_t kLastLevelCacheMultiple = 4;
constexpr int64_t kMaxBufferBytes = int64_t{2} << 30;
// When the C library cannot tell the cache size: larger than the last-level cache of any
// desktop or small server CPU of today, so the buffer errs on the large side.
constexpr int64_t kUnknownCacheBytes = int64_t{256} << 20;
// Best of this many passes: a pass can only be slowed down by others, never sped up.
constexpr int kMeasurePasses = 5;
// Parts start on multiples of 16 floats (64 bytes): whole cache lines and aligned vectors.
constexpr int64_t kPartAlignmentFloats = 16;

std::atomic<float> sum_sink{0.0f};

int64_t last_level_cache_bytes() {
  for (const int name : {_SC_LEVEL4_CACHE_SIZE, _SC_LEVEL3_CACHE_SIZE, _SC_LEVEL2_CACHE_SIZE}) {
    const long bytes = sysconf(name);
    if (bytes > 0) return bytes;
  }
  return kUnknownCacheBytes;
}

// The first float of thread `thread`'s part when `count` floats are shared by `threads` threads.
int64_t part_begin(int64_t count, int threads, int thread) {
  if (thread == threads) return count;
  const int64_t begin = count / threads * thread;
  return begin / kPartAlignmentFloats * kPartAlignmentFloats;
}
}  // namespace

int64_t read_buffer_bytes() {
  const int64_t physical = static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
  const int64_t wanted =
      std::min(kMaxBufferBytes, std::max(kMinBufferBytes, kLastLevelCacheMultiple * last_level_cache_bytes()));
  return physical > 0 ? std::min(wanted, physical / 4) : wanted;
}

ReadBuffer::ReadBuffer(int64_t bytes, int threads) : floats_(bytes / 4), threads_(threads) {
  const int64_t count = floats_.size();
  const int64_t slice = kReadSliceBytes / 4;
  float* data = floats_.data();
  for (int64_t begin = 0; begin < count; begin += slice) {
    const int64_t length = std::min(slice, count - begin);
#pragma omp parallel num_threads(threads)
    {
      const int team = omp_get_num_threads();
      const int thread = omp_get_thread_num();
      // Any finite value will do: the sum is only kept so the reads cannot be optimised away.
      std::fill(data + begin + part_begin(length, team, thread), data + begin + part_begin(length, team, thread + 1),
                1.0f);
    }
  }
}

float ReadBuffer::sum(double* best_slice_rate) const {
  // The dispatcher checks CPUID once; it holds no state that calls could race on.
  static auto stream_sum = xsimd::dispatch<MachineArchs>(StreamSum{});
  const int64_t count = floats_.size();
  const int64_t slice = kReadSliceBytes / 4;
  const float* data = floats_.data();
  float total = 0.0f;
  double best = 0.0;
  for (int64_t begin = 0; begin < count; begin += slice) {
    const int64_t length = std::min(slice, count - begin);
    const auto start = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads_) reduction(+ : total)
    {
      const int team = omp_get_num_threads();
      const int thread = omp_get_thread_num();
      const int64_t part = part_begin(length, team, thread);
      total += stream_sum(data + begin + part, part_begin(length, team, thread + 1) - part);
    }
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    best = std::max(best, static_cast<double>(length) * 4.0 / elapsed.count());
  }
  sum_sink.store(total, std::memory_order_relaxed);
  if (best_slice_rate != nullptr) *best_slice_rate = best;
  return total;
}

double measure_read_bandwidth(int threads) {
  const ReadBuffer buffer(read_buffer_bytes(), threads);
  double best = 0.0;
  for (int pass = 0; pass < kMeasurePasses; ++pass) {
    double slice_rate = 0.0;
    buffer.sum(&slice_rate);
    best = std::max(best, slice_rate);
  }
  return best;
}

}  // namespace simdattn::bench
