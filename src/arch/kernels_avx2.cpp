// The kernels for avx2, compiled with -mavx2 -mfma (see src/CMakeLists.txt).
#include "arch/instantiate_kernels.hpp"

SIMDATTN_INSTANTIATE_KERNELS(xsimd::fma3<xsimd::avx2>)
