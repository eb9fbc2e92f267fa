// simdattn: SIMD, cache-blocked, multithreaded scaled dot-product attention for CPUs.
#pragma once

#include "simdattn/attention.hpp"
#include "simdattn/convert.hpp"
#include "simdattn/export.hpp"
#include "simdattn/merge.hpp"
#include "simdattn/kernels.hpp"
#include "simdattn/reference.hpp"
#include "simdattn/serving.hpp"
#include "simdattn/tensor.hpp"
#include "simdattn/version.h"  // SIMDATTN_VERSION_MAJOR, _MINOR, _PATCH: these headers' version

namespace simdattn {

// The instruction set the kernels run with: "sse2", "avx2", "avx512" or "amx" on x86-64, "neon" on
// AArch64 (the best the CPU has, capped by the environment variable
// SIMDATTN_ISA=sse2|avx2|avx512|amx, or neon, read once, in any case and
// with blanks around it ignored; unset or blank leaves the best). Any other value of SIMDATTN_ISA
// makes this and every call of the library throw std::invalid_argument naming the variable, the
// value and the accepted names.
SIMDATTN_API const char* active_isa();

// "MAJOR.MINOR.PATCH" of the library actually loaded; the headers' version is
// SIMDATTN_VERSION_MAJOR.SIMDATTN_VERSION_MINOR.SIMDATTN_VERSION_PATCH (version.h).
SIMDATTN_API const char* version();

}  // namespace simdattn
