// Packing a strided K/V shard into contiguous rows, and viewing the packed rows.
#include "mpi/kv_block.hpp"

#include <cstring>

namespace simdattn::mpi::detail {
namespace {

// Rows [b, h, j] of `from` (each `dims` elements of `size` bytes, contiguous) one after the other.
void pack_rows(const void* base, const std::array<int64_t, 4>& strides, const BlockShape& shape,
               int64_t dims, int64_t size, unsigned char* to) {
  const auto* bytes = static_cast<const unsigned char*>(base);
  const int64_t row_bytes = dims * size;
  for (int64_t b = 0; b < shape.batch; ++b) {
    for (int64_t h = 0; h < shape.kv_heads; ++h) {
      for (int64_t j = 0; j < shape.keys; ++j) {
        std::memcpy(to, bytes + (b * strides[0] + h * strides[1] + j * strides[2]) * size,
                    static_cast<size_t>(row_bytes));
        to += row_bytes;
      }
    }
  }
}

std::array<int64_t, 4> bhsd_strides(const BlockShape& shape, int64_t dims) {
  return {shape.kv_heads * shape.keys * dims, shape.keys * dims, dims, 1};
}

}  // namespace

void KvBlock::resize(const BlockShape& shape) {
  const int64_t rows = shape.batch * shape.kv_heads * shape.keys;
  keys.resize(static_cast<size_t>(rows * shape.head_dim * dtype_size(shape.dtype)));
  values.resize(static_cast<size_t>(rows * shape.value_dim * dtype_size(shape.dtype)));
  key_scales.resize(static_cast<size_t>(rows * shape.k_groups));
  value_scales.resize(static_cast<size_t>(rows * shape.v_groups));
}

AnyConstTensorView KvBlock::k(const BlockShape& shape) const {
  return {keys.data(), shape.dtype, {shape.batch, shape.kv_heads, shape.keys, shape.head_dim},
          bhsd_strides(shape, shape.head_dim)};
}

AnyConstTensorView KvBlock::v(const BlockShape& shape) const {
  return {values.data(), shape.dtype, {shape.batch, shape.kv_heads, shape.keys, shape.value_dim},
          bhsd_strides(shape, shape.value_dim)};
}

std::optional<ConstTensorView> KvBlock::k_scale(const BlockShape& shape) const {
  if (shape.k_groups == 0) return std::nullopt;
  return ConstTensorView{key_scales.data(), {shape.batch, shape.kv_heads, shape.keys, shape.k_groups},
                         bhsd_strides(shape, shape.k_groups)};
}

std::optional<ConstTensorView> KvBlock::v_scale(const BlockShape& shape) const {
  if (shape.v_groups == 0) return std::nullopt;
  return ConstTensorView{value_scales.data(), {shape.batch, shape.kv_heads, shape.keys, shape.v_groups},
                         bhsd_strides(shape, shape.v_groups)};
}

void pack_block(AnyConstTensorView k, AnyConstTensorView v, const std::optional<ConstTensorView>& k_scale,
                const std::optional<ConstTensorView>& v_scale, const BlockShape& shape, KvBlock& block) {
  block.resize(shape);
  const int64_t size = dtype_size(shape.dtype);
  if (shape.keys == 0) return;
  pack_rows(k.data, k.strides, shape, shape.head_dim, size, block.keys.data());
  pack_rows(v.data, v.strides, shape, shape.value_dim, size, block.values.data());
  if (k_scale.has_value()) {
    pack_rows(k_scale->data, k_scale->strides, shape, shape.k_groups, sizeof(float),
              reinterpret_cast<unsigned char*>(block.key_scales.data()));
  }
  if (v_scale.has_value()) {
    pack_rows(v_scale->data, v_scale->strides, shape, shape.v_groups, sizeof(float),
              reinterpret_cast<unsigned char*>(block.value_scales.data()));
  }
}

}  // namespace simdattn::mpi::detail
