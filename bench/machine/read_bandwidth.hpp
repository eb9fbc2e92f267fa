// The machine's streaming read bandwidth: StreamSum over a buffer far larger than the caches.
#pragma once

#include <cstdint>

#include "aligned_buffer.hpp"

namespace simdattn::bench {

// Bytes the bandwidth is measured over: at least 1 GiB and at least 4× the last-level cache, so
// that what is read comes from memory; at most 2 GiB and a quarter of the physical memory.
int64_t read_buffer_bytes();

// Bytes of one slice: about what one decode call reads (decode_gqa's K and V are 64 MiB). The
// buffer is read slice after slice, all threads on each, and the roof is the fastest slice: on a
// shared machine a pass over the whole buffer is rarely left alone from end to end, while a
// decode call of a few milliseconds often is, so a whole-pass roof would sit under the decode
// rates it divides (fractions above 1); a slice is timed on the same scale as the calls.
inline constexpr int64_t kReadSliceBytes = int64_t{64} << 20;

// A buffer of floats read in slices of kReadSliceBytes, each thread's part of every slice written
// first by the thread that later reads it (on a NUMA machine a page lives on the node of its
// first writer).
class ReadBuffer {
 public:
  ReadBuffer(int64_t bytes, int threads);

  // Σ of the whole buffer, slice after slice, each of the threads summing its contiguous part of
  // the slice; the threads must be as many as at construction so each reads the part it wrote.
  // Returns the fastest slice's bytes per second in *best_slice_rate when given.
  float sum(double* best_slice_rate = nullptr) const;
  int64_t bytes() const { return static_cast<int64_t>(floats_.size()) * 4; }
  int threads() const { return threads_; }

 private:
  AlignedFloats floats_;
  int threads_;
};

// The fastest slice's bytes per second over a few passes over a fresh buffer of
// read_buffer_bytes() on `threads` threads: the bandwidth measured lazily when
// machine/read_bandwidth did not run.
double measure_read_bandwidth(int threads);

}  // namespace simdattn::bench
