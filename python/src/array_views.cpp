// NumPy arrays and PyTorch tensors as simdattn views: see array_views.hpp.
#include "array_views.hpp"

#include <array>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace nb = nanobind;

namespace simdattn::python {
namespace {

template <class... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream text;
  (text << ... << parts);
  return text.str();
}

// The library's DType of a DLPack dtype, if it has one.
std::optional<DType> library_dtype(nb::dlpack::dtype dtype) {
  if (dtype == nb::dtype<float>()) return DType::f32;
  if (dtype == nb::dtype<int8_t>()) return DType::i8;
  if (dtype.lanes == 1 && dtype.bits == 16) {
    if (dtype.code == static_cast<uint8_t>(nb::dlpack::dtype_code::Bfloat)) return DType::bf16;
    if (dtype.code == static_cast<uint8_t>(nb::dlpack::dtype_code::Float)) return DType::f16;
  }
  return std::nullopt;
}

// Shape and strides of a rank-1..4 array, padded on the left to 4 dimensions and permuted for
// the layout; the data pointer is the caller's. `only`, when given, is the one dtype accepted.
template <class Data, class Array>
BasicAnyTensorView<Data> view_of(const Array& array, const char* function, const char* name,
                                 int min_rank, Layout layout, std::optional<DType> only) {
  if (array.device_type() != nb::device::cpu::value) {
    throw nb::type_error(concat(function, ": ", name,
                                " must be a CPU array (device type 1), got device type ",
                                array.device_type())
                             .c_str());
  }
  const std::optional<DType> dtype = library_dtype(array.dtype());
  if (!dtype || (only && *dtype != *only)) {
    const char* expected = !only                  ? "float32, bfloat16, float16 or int8"
                           : *only == DType::f32 ? "float32"
                                                 : "int8";
    throw nb::type_error(concat(function, ": ", name, " must have dtype ", expected,
                                ", got ", dtype_name(array.dtype()))
                             .c_str());
  }
  const int rank = static_cast<int>(array.ndim());
  if (rank < min_rank || rank > 4) {
    const std::string expected =
        min_rank == 4 ? std::string("4 dimensions") : concat(min_rank, " to 4 dimensions");
    throw std::invalid_argument(
        concat(function, ": ", name, " must have ", expected, ", got ", rank));
  }
  std::array<int64_t, 4> shape{1, 1, 1, 1};
  std::array<int64_t, 4> strides{0, 0, 0, 1};
  const int pad = 4 - rank;
  for (int d = 0; d < rank; ++d) {
    shape[pad + d] = static_cast<int64_t>(array.shape(d));
    strides[pad + d] = array.stride(d);
  }
  if (rank == 4 && layout == Layout::bshd) {
    std::swap(shape[1], shape[2]);
    std::swap(strides[1], strides[2]);
  }
  for (int d = 0; d < 4; ++d) {
    if (shape[d] == 1) strides[d] = d == 3 ? 1 : 0;
  }
  // An empty array touches no memory, and exporters report arbitrary strides for it (nanobind
  // gives zeros): describe it as contiguous.
  if (shape[0] == 0 || shape[1] == 0 || shape[2] == 0 || shape[3] == 0) {
    strides = {shape[1] * shape[2] * shape[3], shape[2] * shape[3], shape[3], 1};
  }
  return BasicAnyTensorView<Data>(static_cast<Data*>(array.data()), *dtype, shape, strides);
}

}  // namespace

std::string dtype_name(nb::dlpack::dtype dtype) {
  using Code = nb::dlpack::dtype_code;
  const auto code = static_cast<Code>(dtype.code);
  const char* family = nullptr;
  switch (code) {
    case Code::Int: family = "int"; break;
    case Code::UInt: family = "uint"; break;
    case Code::Float: family = "float"; break;
    case Code::Bfloat: family = "bfloat"; break;
    case Code::Complex: family = "complex"; break;
    case Code::Bool: return "bool";
    default: return concat("dlpack dtype (code ", int(dtype.code), ", bits ", int(dtype.bits), ")");
  }
  std::string name = concat(family, int(dtype.bits));
  if (dtype.lanes != 1) name += concat("x", int(dtype.lanes));
  return name;
}

AnyConstTensorView input_view(const InputArray& array, const char* function, const char* name,
                              int min_rank, Layout layout) {
  return view_of<const void>(array, function, name, min_rank, layout, std::nullopt);
}

AnyTensorView output_view(const OutputArray& array, const char* function, const char* name,
                          int min_rank, Layout layout) {
  return view_of<void>(array, function, name, min_rank, layout, std::nullopt);
}

ConstTensorView float_input_view(const InputArray& array, const char* function, const char* name,
                                 int min_rank, Layout layout) {
  const AnyConstTensorView view =
      view_of<const void>(array, function, name, min_rank, layout, DType::f32);
  return ConstTensorView(static_cast<const float*>(view.data), view.shape, view.strides);
}

TensorView float_output_view(const OutputArray& array, const char* function, const char* name,
                             int min_rank, Layout layout) {
  const AnyTensorView view = view_of<void>(array, function, name, min_rank, layout, DType::f32);
  return TensorView(static_cast<float*>(view.data), view.shape, view.strides);
}

BasicTensorView<int8_t> int8_output_view(const OutputArray& array, const char* function,
                                         const char* name, int min_rank) {
  const AnyTensorView view =
      view_of<void>(array, function, name, min_rank, Layout::bhsd, DType::i8);
  return BasicTensorView<int8_t>(static_cast<int8_t*>(view.data), view.shape, view.strides);
}

std::uintptr_t data_address(const InputArray& array) {
  return reinterpret_cast<std::uintptr_t>(array.data());
}

}  // namespace simdattn::python
