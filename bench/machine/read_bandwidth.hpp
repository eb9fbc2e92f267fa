// The machine's streaming read bandwidth: StreamSum over a buffer far larger than the caches.
#pragma once

#include <cstdint>

#include "aligned_buffer.hpp"

namespace simdattn::bench {

// Bytes the bandwidth is measured over: at least 1 GiB and at least 4× the last-level cache, so
// that what is read comes from memory; at most 2 GiB and a quarter of the physical memory.
int64_t read_buffer_bytes();

// A buffer of floats, each thread's part written first by the thread that later reads it (on a
// NUMA machine a page lives on the node of its first writer).
class ReadBuffer {
 public:
  ReadBuffer(int64_t bytes, int threads);

  // Σ of the whole buffer, each of the threads summing its contiguous part; the threads must be
  // as many as at construction so each reads the part it wrote.
  float sum() const;
  int64_t bytes() const { return static_cast<int64_t>(floats_.size()) * 4; }
  int threads() const { return threads_; }

 private:
  AlignedFloats floats_;
  int threads_;
};

// The best bytes per second of a few passes over a fresh buffer of read_buffer_bytes() on
// `threads` threads: the bandwidth measured lazily when machine/read_bandwidth did not run.
double measure_read_bandwidth(int threads);

}  // namespace simdattn::bench
