#include "aligned_buffer.hpp"

#include <sys/mman.h>

#include <cstdlib>
#include <new>
#include <random>
#include <string>

namespace simdattn::bench {

namespace {

// SIMDATTN_BENCH_HUGE_PAGES=1: buffers of 2 MiB or more are 2 MiB aligned and advised to the
// kernel as transparent-huge-page candidates (madvise), as a serving engine may allocate its
// KV pools. Off by default: malloc'd memory on a THP "madvise" system gets 4 KiB pages.
bool huge_pages_asked() {
  static const bool asked = [] {
    const char* value = std::getenv("SIMDATTN_BENCH_HUGE_PAGES");
    return value != nullptr && std::string(value) == "1";
  }();
  return asked;
}

constexpr std::size_t kHugePage = std::size_t{2} << 20;

}  // namespace

AlignedFloats::AlignedFloats(int64_t count) : count_(count) {
  const std::size_t bytes = static_cast<std::size_t>(count) * sizeof(float);
  const std::size_t alignment = huge_pages_asked() && bytes >= kHugePage ? kHugePage : kBufferAlignment;
  // aligned_alloc wants a size that is a multiple of the alignment.
  const std::size_t rounded = (bytes + alignment - 1) / alignment * alignment;
  data_.reset(static_cast<float*>(std::aligned_alloc(alignment, rounded == 0 ? alignment : rounded)));
  if (!data_) throw std::bad_alloc();
  if (alignment == kHugePage) madvise(data_.get(), rounded, MADV_HUGEPAGE);
}

void fill_uniform(float* data, int64_t count, uint32_t seed) {
  // mt19937 and uniform_real_distribution are specified exactly enough by the standard library
  // in use (libstdc++) that a seed names the same data on any machine running this build.
  std::mt19937 generator(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (int64_t i = 0; i < count; ++i) data[i] = uniform(generator);
}

}  // namespace simdattn::bench
