// Strided, non-owning views of 4-D float tensors [batch, heads, seq, head_dim].
#pragma once

#include <array>
#include <cstdint>
#include <type_traits>

namespace simdattn {

// A view of someone else's memory as [batch, heads, seq, head_dim]. Strides are in elements and
// may be anything for the first three dimensions (BHSD, BSHD, a slice, a zero-stride broadcast of
// an input); head_dim must be contiguous: strides[3] == 1. T is float (outputs) or const float
// (inputs); a TensorView converts to a ConstTensorView.
template <class T>
struct BasicTensorView {
  T* data = nullptr;
  std::array<int64_t, 4> shape{};
  std::array<int64_t, 4> strides{};

  constexpr BasicTensorView() = default;
  constexpr BasicTensorView(T* data_, std::array<int64_t, 4> shape_, std::array<int64_t, 4> strides_)
      : data(data_), shape(shape_), strides(strides_) {}
  template <class U, class = std::enable_if_t<std::is_same_v<const U, T> && !std::is_same_v<U, T>>>
  constexpr BasicTensorView(const BasicTensorView<U>& other)  // NOLINT: float -> const float is safe
      : data(other.data), shape(other.shape), strides(other.strides) {}

  constexpr int64_t batch() const { return shape[0]; }
  constexpr int64_t heads() const { return shape[1]; }
  constexpr int64_t seq() const { return shape[2]; }
  constexpr int64_t head_dim() const { return shape[3]; }

  // The first element of row (b, h, s); valid only for indices inside the shape. A view without
  // data (an empty one: some dimension is 0) gives nullptr for every row, so that no offset is
  // ever applied to a null pointer.
  constexpr T* row(int64_t b, int64_t h, int64_t s) const {
    return data == nullptr ? nullptr : data + b * strides[0] + h * strides[1] + s * strides[2];
  }
};

using TensorView = BasicTensorView<float>;
using ConstTensorView = BasicTensorView<const float>;

// Contiguous [batch, heads, seq, head_dim] memory (PyTorch's default attention layout).
template <class T>
constexpr BasicTensorView<T> bhsd_view(T* data, int64_t batch, int64_t heads, int64_t seq,
                                       int64_t head_dim) {
  return {data, {batch, heads, seq, head_dim}, {heads * seq * head_dim, seq * head_dim, head_dim, 1}};
}

// Contiguous [batch, seq, heads, head_dim] memory (the layout projections produce), seen as BHSD.
template <class T>
constexpr BasicTensorView<T> bshd_view(T* data, int64_t batch, int64_t seq, int64_t heads,
                                       int64_t head_dim) {
  return {data, {batch, heads, seq, head_dim}, {seq * heads * head_dim, head_dim, heads * head_dim, 1}};
}

}  // namespace simdattn
