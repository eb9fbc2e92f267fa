// The machine kernels for xsimd::fma3<xsimd::avx2>, compiled with -mavx2 -mfma (bench/CMakeLists.txt).
// Instantiations only: the code lives in the *_impl.hpp headers.
#include "machine/fma_loop_impl.hpp"
#include "machine/stream_sum_impl.hpp"

namespace simdattn::bench {

template FmaLoopResult FmaLoop::operator()<xsimd::fma3<xsimd::avx2>>(xsimd::fma3<xsimd::avx2>, int64_t) const;
template float StreamSum::operator()<xsimd::fma3<xsimd::avx2>>(xsimd::fma3<xsimd::avx2>, const float*, int64_t) const;

}  // namespace simdattn::bench
