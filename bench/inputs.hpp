// Seeded inputs of a standard shape, made once per shape and kept in the shared memory slot.
#pragma once

#include <cstdint>

#include "aligned_buffer.hpp"
#include "shapes.hpp"
#include "simdattn/tensor.hpp"

namespace simdattn::bench {

// q, out and one or more copies of (k, v), all BHSD contiguous, values uniform in [-1, 1].
// Decode shapes get enough copies of (k, v) that cycling through them streams from memory the
// way a real decode step does (its KV cache was last touched a whole model ago); on a machine
// whose last-level cache holds one copy, reading the same copy again would measure the cache.
class AttentionInputs {
 public:
  AttentionInputs(const Shape& shape, int64_t kv_copies);

  ConstTensorView q() const;
  ConstTensorView k(int64_t copy) const;
  ConstTensorView v(int64_t copy) const;
  TensorView out() const;
  int64_t kv_copies() const { return kv_copies_; }

 private:
  Shape shape_;
  int64_t kv_copies_;
  AlignedFloats q_;
  AlignedFloats kv_pool_;  // copy c: k at c·kv_elements, v half a copy further
  AlignedFloats out_;
};

// The inputs of the three stage benchmarks: q, k, v as above (one copy), a score matrix
// [B, Hq, Sq, Sk] and an output [B, Hq, Sq, D].
class StageInputs {
 public:
  explicit StageInputs(const Shape& shape);

  ConstTensorView q() const;
  ConstTensorView k() const;
  ConstTensorView v() const;
  TensorView scores() const;
  TensorView out() const;

 private:
  Shape shape_;
  AlignedFloats q_, k_, v_, scores_, out_;
};

// Where a decode benchmark's K and V come from. cold (the default): a new copy each call, from
// memory, as in a real decode step; warm: the same copy every call, so it may come from the
// last-level cache, as a peer that re-reads the same tensors does. Set before the first benchmark runs.
enum class DecodeKv { cold, warm };
void set_decode_kv(DecodeKv where);
DecodeKv decode_kv();

// The inputs for `shape`, made on first use; they stay until another shape's inputs are asked
// for (see MemorySlot).
AttentionInputs& attention_inputs(const Shape& shape);
StageInputs& stage_inputs(const Shape& shape);

}  // namespace simdattn::bench
