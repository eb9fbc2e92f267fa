// The definitions of WidenRowKernel and NarrowRowKernel (convert_kernels.hpp).
#pragma once

#include "kernels/convert_kernels.hpp"
#include "kernels/element_convert_impl.hpp"
#include "kernels/isa_namespace.hpp"

namespace simdattn::detail {

template <class Arch>
void WidenRowKernel::operator()(Arch, const void* source, DType dtype, int64_t count,
                                float* destination, const float* scales, int64_t group) const {
  SIMDATTN_ISA_NAMESPACE::widen_row<Arch>(source, dtype, count, destination, scales, group);
}

template <class Arch>
void NarrowRowKernel::operator()(Arch, const float* source, int64_t count, void* destination,
                                 DType dtype) const {
  SIMDATTN_ISA_NAMESPACE::narrow_row<Arch>(source, count, destination, dtype);
}

}  // namespace simdattn::detail
