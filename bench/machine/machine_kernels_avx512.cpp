// The machine kernels for xsimd::avx512f, compiled with the AVX-512 flags (bench/CMakeLists.txt).
// Instantiations only: the code lives in the *_impl.hpp headers.
#include "machine/fma_loop_impl.hpp"
#include "machine/stream_sum_impl.hpp"

namespace simdattn::bench {

template FmaLoopResult FmaLoop::operator()<xsimd::avx512f>(xsimd::avx512f, int64_t) const;
template float StreamSum::operator()<xsimd::avx512f>(xsimd::avx512f, const float*, int64_t) const;

}  // namespace simdattn::bench
