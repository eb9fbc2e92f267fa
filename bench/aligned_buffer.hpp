// An owned, 64-byte aligned array of floats: the one allocation type the benchmark inputs use.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>

namespace simdattn::bench {

// 64 bytes: a cache line, and the width of an AVX-512 register, so that no benchmark pays for
// loads that straddle lines because of where malloc happened to put its data.
inline constexpr std::size_t kBufferAlignment = 64;

class AlignedFloats {
 public:
  AlignedFloats() = default;
  // count floats, uninitialised; throws std::bad_alloc when the memory is not there.
  explicit AlignedFloats(int64_t count);

  float* data() const { return data_.get(); }
  int64_t size() const { return count_; }

 private:
  struct Free {
    void operator()(float* pointer) const { std::free(pointer); }
  };
  std::unique_ptr<float, Free> data_;
  int64_t count_ = 0;
};

// Fills data[0, count) with numbers drawn uniformly from [-1, 1] by a generator seeded with
// `seed`: the same seed gives the same numbers on every machine and run.
void fill_uniform(float* data, int64_t count, uint32_t seed);

}  // namespace simdattn::bench
