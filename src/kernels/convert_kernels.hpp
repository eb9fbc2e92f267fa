// Row conversions of one ISA as functors, for the kernel tests (tests/test_kernels.cpp): the
// vectorised widen_row and narrow_row (element_convert_impl.hpp) without a plan, so that each can
// be checked bit for bit against the scalar conversions on every ISA. Instantiated in
// simdattn_testable only (src/arch/building_blocks.cpp).
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

}  // namespace simdattn::detail
