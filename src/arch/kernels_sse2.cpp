// The kernels for sse2, compiled with x86-64's baseline flags only (see src/CMakeLists.txt).
#include "arch/instantiate_kernels.hpp"

SIMDATTN_INSTANTIATE_KERNELS(xsimd::sse2)
