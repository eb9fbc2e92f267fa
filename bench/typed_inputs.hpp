// Inputs of a standard shape stored in another precision than fp32: 16-bit q, k, v and out, or
// fp32 queries over a 16-bit or int8 K/V cache. The values are those of AttentionInputs (the same
// seeds), rounded to nearest even into the precision (int8: symmetric, max|x| / 127 per group of
// Precision::scale_group elements of a row), so every precision times the same problem.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "aligned_buffer.hpp"
#include "shapes.hpp"
#include "simdattn/tensor.hpp"

namespace simdattn::bench {

// One precision of the dtype axis: its name in benchmark names (attention/<shape>/simd-<name>),
// the dtypes of q (and out) and of the K/V cache, and whether only decode shapes run it.
struct Precision {
  std::string name;
  DType queries;
  DType cache;
  bool decode_only;
  std::string describes;  // in the report's words
  // int8 caches: elements of a row that share one scale; 0 for one scale per row (the library's
  // default, OpenVINO's per-token u8 scales). 32 is ggml's q8_0 block.
  int64_t scale_group = 0;
};

// bf16 and fp16 (q, k, v and out alike) on every shape; fp32 queries over f16, bf16 and int8
// caches (scales per 32 elements and per row) on the decode shapes.
const std::vector<Precision>& precisions();

// Bytes a decode step reads of K and V in this precision (each kv head once), scales included.
double cache_bytes(const Shape& shape, const Precision& precision);

class TypedAttentionInputs {
 public:
  TypedAttentionInputs(const Shape& shape, const Precision& precision, int64_t kv_copies);

  AnyConstTensorView q() const;
  AnyConstTensorView k(int64_t copy) const;
  AnyConstTensorView v(int64_t copy) const;
  AnyTensorView out() const;
  // The int8 scales of copy's K and V ([B, Hkv, Sk, scale groups a row]); empty views otherwise.
  ConstTensorView k_scale(int64_t copy) const;
  ConstTensorView v_scale(int64_t copy) const;
  int64_t kv_copies() const { return kv_copies_; }

 private:
  AnyConstTensorView cache_view(int64_t copy, int64_t half) const;
  ConstTensorView scale_view(int64_t copy, int64_t half) const;

  Shape shape_;
  Precision precision_;
  int64_t kv_copies_;
  AlignedFloats q_;        // q in the queries' dtype
  AlignedFloats kv_pool_;  // copy c: k, then v, in the cache's dtype
  AlignedFloats scales_;   // copy c: k's scales, then v's (int8 only)
  AlignedFloats out_;      // out in the queries' dtype
};

// The inputs for `shape` in `precision`, made on first use and kept in the shared memory slot.
TypedAttentionInputs& typed_attention_inputs(const Shape& shape, const Precision& precision);

}  // namespace simdattn::bench
