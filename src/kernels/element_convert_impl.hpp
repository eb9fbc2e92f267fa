// Per-ISA element conversions of whole rows: widen (bf16, f16, int8 · scale → float) and narrow
// (float → bf16, f16, rounded to nearest even). The contracts are those of scalar_convert.hpp.
#pragma once

#include <cstdint>

#include "kernels/isa_namespace.hpp"
#include "kernels/scalar_convert.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

// Out of line: called once per row, from code paths (the fp32 ones) that must not grow with them.
template <class Arch>
[[gnu::noinline]] void widen_row(const void* source, DType dtype, int64_t count, float* destination,
                      const float* scales, int64_t group) {
  widen_row_scalar(source, dtype, count, destination, scales, group);
}

template <class Arch>
[[gnu::noinline]] void narrow_row(const float* source, int64_t count, void* destination, DType dtype) {
  narrow_row_scalar(source, count, destination, dtype);
}

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE
