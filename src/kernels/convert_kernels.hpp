// Row conversions of one ISA as functors: the vectorised widen_row and narrow_row
// (element_convert_impl.hpp) and int8 quantization (quantize_row_impl.hpp) without a plan, for
// convert() and quantize_rows() (src/api/convert.cpp) and for the kernel tests, which check each
// ISA bit for bit against the scalar conversions (scalar_convert.hpp).
#pragma once

#include <cstdint>

#include "simdattn/tensor.hpp"

namespace simdattn::detail {

// destination[e] = source element e widened (int8 times scales[e / group] when scales is set).
struct WidenRowKernel {
  template <class Arch>
  void operator()(Arch, const void* source, DType dtype, int64_t count, float* destination,
                  const float* scales, int64_t group) const;
};

// source[0, count) rounded to nearest even into a row of dtype (f32, bf16 or f16).
struct NarrowRowKernel {
  template <class Arch>
  void operator()(Arch, const float* source, int64_t count, void* destination, DType dtype) const;
};

// *finite = whether every one of row[0, count) is finite.
struct FiniteRowKernel {
  template <class Arch>
  void operator()(Arch, const float* row, int64_t count, bool* finite) const;
};

// quantize_row_scalar (scalar_convert.hpp), bit for bit: a finite row of `length` floats as int8,
// one scale per group of `group` elements (group divides length), the scale of group g stored at
// scales[g * scale_stride].
struct QuantizeRowKernel {
  template <class Arch>
  void operator()(Arch, const float* row, int64_t length, int64_t group, int8_t* out, float* scales,
                  int64_t scale_stride) const;
};

}  // namespace simdattn::detail
