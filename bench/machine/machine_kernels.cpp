// The machine kernels for one ISA: simdattn_add_isa() (cmake/SimdattnIsas.cmake) compiles this
// file once per registered ISA, with only that ISA's flags and SIMDATTN_ISA_UNIT=<its name>.
// Instantiations only: the code lives in the *_impl.hpp headers.
#include "isa/registry.hpp"
#include "kernels/isa_namespace.hpp"
#include "machine/fma_loop_impl.hpp"
#include "machine/stream_sum_impl.hpp"

namespace simdattn::bench {

using UnitArch = detail::IsaTraits<detail::Isa::SIMDATTN_ISA_UNIT>::Arch;

template FmaLoopResult FmaLoop::operator()<UnitArch>(UnitArch, int64_t) const;
template float StreamSum::operator()<UnitArch>(UnitArch, const float*, int64_t) const;

}  // namespace simdattn::bench
