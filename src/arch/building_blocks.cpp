// GemmBlockKernel and OnlineSoftmaxKernel for one ISA, for the kernel tests and benchmark only:
// simdattn_add_isa() compiles this file once per registered ISA into simdattn_testable, not into
// the library. A unit of its own, so that these extra callers of gemm_block and
// online_softmax_block cannot change how the compiler inlines them into the tiles of
// src/arch/kernels.cpp (in the same unit they did: the fused tile's code changed).
#include "isa/registry.hpp"
#include "kernels/building_blocks_impl.hpp"
#include "kernels/isa_namespace.hpp"

namespace simdattn::detail {

using UnitArch = IsaTraits<Isa::SIMDATTN_ISA_UNIT>::Arch;

template void GemmBlockKernel::operator()<UnitArch>(UnitArch, int64_t, int64_t, int64_t,
                                                    const float*, int64_t, int64_t, const float*,
                                                    int64_t, float*, int64_t, float*) const;
template void OnlineSoftmaxKernel::operator()<UnitArch>(UnitArch, float*, int64_t, int64_t, float*,
                                                        float*, float*, const float*) const;

}  // namespace simdattn::detail
