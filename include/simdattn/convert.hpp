// Whole tensors to and from the 16-bit and 8-bit storage attention() reads: filling a bf16, f16
// or int8 K/V cache from fp32 rows, and reading a 16-bit output back as fp32. Both functions use
// the widest conversion instructions the CPU has (the ISA attention() dispatches to); a call of
// 32K elements or more shares its rows among OpenMP's default team (fewer stay on the calling
// thread, as does a call from inside a parallel region), with the same result on any number of
// threads. Both throw std::invalid_argument (naming the argument, the expected and the actual
// value) before writing anything when an argument is wrong.
#pragma once

#include <stdexcept>  // std::invalid_argument, which every function here throws

#include "simdattn/export.hpp"
#include "simdattn/tensor.hpp"

namespace simdattn {

// destination[b,h,s,d] = source[b,h,s,d]. Each of them f32, bf16 or f16, of the same shape, with
// any strides >= 0 and the last dimension contiguous; destination must not overlap source.
// Widening is exact; narrowing rounds to nearest, ties to even, overflow gives ±inf, NaN stays
// NaN (quiet, sign kept), f16 subnormals are rounded correctly: the same bits on every ISA and
// whatever the floating-point environment.
SIMDATTN_API void convert(AnyConstTensorView source, AnyTensorView destination);

// Symmetric int8 quantization in groups, as attention()'s k_scale / v_scale read it: each row
// of source (f32, bf16 or f16) [B, H, S, D] is cut into G = scales.shape[3] groups of D / G
// consecutive elements (G must divide D); for each group,
//   scale = max |x| / 127,  destination = round-to-nearest-even(x / scale), in [-127, 127],
// and an all-zero group gets scale 0 and zeros. destination [B, H, S, D] int8, scales
// [B, H, S, G] f32. Every source element must be finite. Then scale · destination is within
// scale / 2 (plus the rounding of x / scale) of x. The same bits on every ISA and whatever the
// rounding mode (the division aside, which is IEEE's in the current mode).
SIMDATTN_API void quantize_rows(AnyConstTensorView source, BasicTensorView<int8_t> destination,
                                TensorView scales);

}  // namespace simdattn
