// The kernels for avx512, compiled with -mavx512f -mavx512cd -mavx512dq -mavx512bw -mfma (see src/CMakeLists.txt).
#include "arch/instantiate_kernels.hpp"

SIMDATTN_INSTANTIATE_KERNELS(xsimd::avx512f)
