// Strided, non-owning views of 4-D tensors [batch, heads, seq, head_dim], and their element types.
#pragma once

#include <array>
#include <cstdint>
#include <type_traits>

namespace simdattn {

// The element types a tensor may hold. The values are the C ABI's simdattn_dtype.
//   f32:  IEEE binary32 (float).
//   bf16: bfloat16, the upper half of a binary32 (8 exponent bits, 7 mantissa bits).
//   f16:  IEEE binary16 (5 exponent bits, 10 mantissa bits; largest finite 65504).
//   i8:   int8_t, meaning scale · value with fp32 scales given beside it (k_scale, v_scale).
// The library computes in fp32 whatever the inputs: 16-bit and 8-bit values are widened exactly.
enum class DType : int32_t { f32 = 0, bf16 = 1, f16 = 2, i8 = 3 };

// Storage of one bfloat16 or binary16 value: its bits. There is no arithmetic on them; convert()
// (simdattn/convert.hpp) turns whole tensors to and from float.
struct bf16 {
  uint16_t bits;
};
struct f16 {
  uint16_t bits;
};

namespace detail {
template <class T>
struct DTypeOf;  // no DType for any other type: a view of it does not compile
template <>
struct DTypeOf<float> : std::integral_constant<DType, DType::f32> {};
template <>
struct DTypeOf<bf16> : std::integral_constant<DType, DType::bf16> {};
template <>
struct DTypeOf<f16> : std::integral_constant<DType, DType::f16> {};
template <>
struct DTypeOf<int8_t> : std::integral_constant<DType, DType::i8> {};
}  // namespace detail

// The DType of element type T (const or not): float, bf16, f16 or int8_t.
template <class T>
inline constexpr DType dtype_of = detail::DTypeOf<std::remove_const_t<T>>::value;

// "f32", "bf16", "f16", "i8"; "unknown" for a value outside the enum.
constexpr const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32: return "f32";
    case DType::bf16: return "bf16";
    case DType::f16: return "f16";
    case DType::i8: return "i8";
  }
  return "unknown";
}

// Bytes per element: 4, 2, 2, 1 (0 for a value outside the enum).
constexpr int64_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::f32: return 4;
    case DType::bf16:
    case DType::f16: return 2;
    case DType::i8: return 1;
  }
  return 0;
}

// A view of someone else's memory as [batch, heads, seq, head_dim]. Strides are in elements and
// may be anything for the first three dimensions (BHSD, BSHD, a slice, a zero-stride broadcast of
// an input); head_dim must be contiguous: strides[3] == 1. T is an element type (float, bf16,
// f16, int8_t), const for inputs; a view of T converts to a view of const T.
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

// A view whose element type is a value rather than a type: what the entry points take, so that one
// function serves every dtype. Any BasicTensorView converts to it implicitly (float code written
// against TensorView and ConstTensorView compiles unchanged), and so does {pointer, shape,
// strides}. `Data` is void (outputs) or const void (inputs).
template <class Data>
struct BasicAnyTensorView {
  Data* data = nullptr;
  DType dtype = DType::f32;
  std::array<int64_t, 4> shape{};
  std::array<int64_t, 4> strides{};

  constexpr BasicAnyTensorView() = default;
  template <class T, class = std::enable_if_t<std::is_const_v<Data> || !std::is_const_v<T>>,
            class = decltype(detail::DTypeOf<std::remove_const_t<T>>::value)>
  constexpr BasicAnyTensorView(const BasicTensorView<T>& view)  // NOLINT: implicit on purpose
      : data(view.data), dtype(dtype_of<T>), shape(view.shape), strides(view.strides) {}
  template <class T, class = std::enable_if_t<std::is_const_v<Data> || !std::is_const_v<T>>,
            class = decltype(detail::DTypeOf<std::remove_const_t<T>>::value)>
  constexpr BasicAnyTensorView(T* data_, std::array<int64_t, 4> shape_,
                               std::array<int64_t, 4> strides_)
      : data(data_), dtype(dtype_of<T>), shape(shape_), strides(strides_) {}
  constexpr BasicAnyTensorView(Data* data_, DType dtype_, std::array<int64_t, 4> shape_,
                               std::array<int64_t, 4> strides_)
      : data(data_), dtype(dtype_), shape(shape_), strides(strides_) {}
  template <class Other, class = std::enable_if_t<std::is_const_v<Data> && !std::is_const_v<Other>>>
  constexpr BasicAnyTensorView(const BasicAnyTensorView<Other>& other)  // NOLINT: void -> const void
      : data(other.data), dtype(other.dtype), shape(other.shape), strides(other.strides) {}

  constexpr int64_t batch() const { return shape[0]; }
  constexpr int64_t heads() const { return shape[1]; }
  constexpr int64_t seq() const { return shape[2]; }
  constexpr int64_t head_dim() const { return shape[3]; }

  // The first element of row (b, h, s), as BasicTensorView::row (nullptr for a view without data).
  Data* row(int64_t b, int64_t h, int64_t s) const {
    using Byte = std::conditional_t<std::is_const_v<Data>, const unsigned char, unsigned char>;
    if (data == nullptr) return nullptr;
    return static_cast<Byte*>(data) + (b * strides[0] + h * strides[1] + s * strides[2]) * dtype_size(dtype);
  }
};

using AnyTensorView = BasicAnyTensorView<void>;
using AnyConstTensorView = BasicAnyTensorView<const void>;

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
