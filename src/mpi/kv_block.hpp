// A rank's K/V block as it travels around the ring: keys, values (and an int8 cache's scales)
// packed contiguously, so that one message each carries them whatever the caller's strides.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "simdattn/tensor.hpp"

namespace simdattn::mpi::detail {

// The shape a block's tensors have: [batch, kv heads, keys, dims] of k and v, and the scales'
// groups per row (0 without scales).
struct BlockShape {
  int64_t batch, kv_heads, keys, head_dim, value_dim, k_groups, v_groups;
  DType dtype;
};

struct KvBlock {
  std::vector<unsigned char> keys, values;
  std::vector<float> key_scales, value_scales;

  // Sized for `shape` (contents undefined): a receive buffer.
  void resize(const BlockShape& shape);
  // Views of the packed tensors in BHSD order.
  AnyConstTensorView k(const BlockShape& shape) const;
  AnyConstTensorView v(const BlockShape& shape) const;
  std::optional<ConstTensorView> k_scale(const BlockShape& shape) const;
  std::optional<ConstTensorView> v_scale(const BlockShape& shape) const;
};

// A copy of k and v (and their scales), contiguous, in `block` (resized to shape).
void pack_block(AnyConstTensorView k, AnyConstTensorView v, const std::optional<ConstTensorView>& k_scale,
                const std::optional<ConstTensorView>& v_scale, const BlockShape& shape, KvBlock& block);

}  // namespace simdattn::mpi::detail
