// NumPy arrays and PyTorch tensors (any object nanobind reads through the buffer protocol or
// DLPack) seen as simdattn's strided views, without a copy: the view points at the caller's memory.
#pragma once

#include <cstdint>
#include <string>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include "simdattn/tensor.hpp"

namespace simdattn::python {

// Any CPU array, read-only or writable; dtype, rank and device are checked by the functions below
// with messages that name the argument (nanobind's own constraints would either reject with a
// generic signature error or convert, i.e. copy).
using InputArray = nanobind::ndarray<nanobind::ro>;
using OutputArray = nanobind::ndarray<>;

// How the caller's 4-D q, k, v and out arrays order their dimensions. bshd arrays are
// [batch, seq, heads, head_dim] and are seen as BHSD by swapping the middle two dimensions.
enum class Layout : int32_t { bhsd = 0, bshd = 1 };

// "float32", "bfloat16", "int64", ...: a dtype as NumPy and PyTorch users name it.
std::string dtype_name(nanobind::dlpack::dtype dtype);

// A view of a CPU array of rank `rank` (1 to 4) as [batch, heads, seq, head_dim]: missing
// leading dimensions become size-1 dimensions, `layout` is applied to 4-D arrays, and the stride
// of a size-1 dimension (meaningless, and arbitrary in PyTorch) is normalised so that the
// library's checks see a contiguous last dimension. input_view and output_view take any dtype
// the library stores (float32, bfloat16, float16, int8) and leave to the library which dtype
// fits which argument, so that its message explains a mismatch; float_input_view and
// float_output_view take float32 only (lse, weights, scores, scales), int8_output_view int8
// only (quantize_rows' destination). Throws
// nanobind::type_error for another dtype or a device other than the CPU and
// std::invalid_argument for a wrong rank, naming `function` and `name`.
AnyConstTensorView input_view(const InputArray& array, const char* function, const char* name,
                              int min_rank, Layout layout = Layout::bhsd);
AnyTensorView output_view(const OutputArray& array, const char* function, const char* name,
                          int min_rank, Layout layout = Layout::bhsd);
ConstTensorView float_input_view(const InputArray& array, const char* function, const char* name,
                                 int min_rank, Layout layout = Layout::bhsd);
TensorView float_output_view(const OutputArray& array, const char* function, const char* name,
                             int min_rank, Layout layout = Layout::bhsd);
BasicTensorView<int8_t> int8_output_view(const OutputArray& array, const char* function,
                                         const char* name, int min_rank);

// The address of the first element as the library would see it (tests use it to show that no
// copy was made).
std::uintptr_t data_address(const InputArray& array);

}  // namespace simdattn::python
