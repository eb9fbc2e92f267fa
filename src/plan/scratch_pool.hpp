// Per-thread working memory of a call, allocated once before the parallel loop so that an
// allocation failure surfaces as std::bad_alloc before any output is written.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/tile_kernels.hpp"
#include "plan/attention_plan.hpp"

namespace simdattn::detail {

// Floats aligned to a cache line (and so to every register width), freed on destruction.
class AlignedFloats {
 public:
  AlignedFloats() = default;
  explicit AlignedFloats(int64_t count);  // throws std::bad_alloc
  float* data() const { return data_.get(); }

 private:
  struct Free {
    void operator()(float* p) const;
  };
  std::unique_ptr<float, Free> data_;
};

class ScratchPool {
 public:
  // Room for `threads` threads working on tiles of `plan`; `score_rows` keys of scores per tile.
  ScratchPool(const AttentionPlan& plan, int threads, int64_t score_rows);
  TileScratch& for_thread(int thread) { return tiles_[thread]; }

 private:
  AlignedFloats floats_;
  std::vector<ColumnInfo> columns_;
  std::vector<TileScratch> tiles_;
};

// The partial results of the key chunks of a decoding plan (empty when keys are not split).
class PartialPool {
 public:
  explicit PartialPool(const AttentionPlan& plan);
  const PartialSlots& slots() const { return slots_; }

 private:
  AlignedFloats floats_;
  PartialSlots slots_{};
};

// a · b, throwing std::bad_alloc when it does not fit in int64 (a size no machine can allocate).
int64_t checked_size(int64_t a, int64_t b);

}  // namespace simdattn::detail
