#include "aligned_buffer.hpp"

#include <new>
#include <random>

namespace simdattn::bench {

AlignedFloats::AlignedFloats(int64_t count) : count_(count) {
  // aligned_alloc wants a size that is a multiple of the alignment.
  const std::size_t bytes = static_cast<std::size_t>(count) * sizeof(float);
  const std::size_t rounded = (bytes + kBufferAlignment - 1) / kBufferAlignment * kBufferAlignment;
  data_.reset(static_cast<float*>(std::aligned_alloc(kBufferAlignment, rounded == 0 ? kBufferAlignment : rounded)));
  if (!data_) throw std::bad_alloc();
}

void fill_uniform(float* data, int64_t count, uint32_t seed) {
  // mt19937 and uniform_real_distribution are specified exactly enough by the standard library
  // in use (libstdc++) that a seed names the same data on any machine running this build.
  std::mt19937 generator(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (int64_t i = 0; i < count; ++i) data[i] = uniform(generator);
}

}  // namespace simdattn::bench
