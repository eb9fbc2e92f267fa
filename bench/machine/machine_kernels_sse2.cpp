// The machine kernels for xsimd::sse2, baseline x86-64: no extra flags.
// Instantiations only: the code lives in the *_impl.hpp headers.
#include "machine/fma_loop_impl.hpp"
#include "machine/stream_sum_impl.hpp"

namespace simdattn::bench {

template FmaLoopResult FmaLoop::operator()<xsimd::sse2>(xsimd::sse2, int64_t) const;
template float StreamSum::operator()<xsimd::sse2>(xsimd::sse2, const float*, int64_t) const;

}  // namespace simdattn::bench
