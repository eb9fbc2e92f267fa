// Every per-ISA kernel, instantiated for one ISA: simdattn_add_isa() (cmake/SimdattnIsas.cmake)
// compiles this file once per registered ISA, with only that ISA's flags and
// SIMDATTN_ISA_UNIT=<its name>. These instantiations are the unit's entry points, the only
// symbols it leaves global; run_for_isa calls them.
#include "isa/registry.hpp"
#include "kernels/composed_tile_impl.hpp"
#include "kernels/convert_kernels_impl.hpp"
#include "kernels/fused_tile_impl.hpp"
#include "kernels/isa_namespace.hpp"
#include "kernels/merge_rows_impl.hpp"
#include "kernels/quantize_row_impl.hpp"
#include "kernels/softmax_row_impl.hpp"
#include "kernels/stage_tiles_impl.hpp"

namespace simdattn::detail {
namespace SIMDATTN_ISA_NAMESPACE {
using UnitArch = IsaTraits<Isa::SIMDATTN_ISA_UNIT>::Arch;
static_assert(UnitArch::supported(),
              "the flags of this ISA in cmake/SimdattnIsas.cmake do not enable the xsimd "
              "architecture of its entry in src/isa/registry.hpp");
}  // namespace SIMDATTN_ISA_NAMESPACE

using SIMDATTN_ISA_NAMESPACE::UnitArch;

template void FusedTile::operator()<UnitArch>(UnitArch, const TileProblem&, const TileJob&,
                                              TileScratch&, const PartialSlots&) const;
template void ComposedTile::operator()<UnitArch>(UnitArch, const TileProblem&, const TileJob&,
                                                 TileScratch&) const;
template void QkScoresTile::operator()<UnitArch>(UnitArch, const TileProblem&, const TileJob&,
                                                 TileScratch&) const;
template void WeightsVTile::operator()<UnitArch>(UnitArch, const TileProblem&, const TileJob&,
                                                 TileScratch&) const;
template void SoftmaxRow::operator()<UnitArch>(UnitArch, float*, int64_t) const;
template void ExpArray::operator()<UnitArch>(UnitArch, const float*, float*, int64_t) const;
template void TransposeSquare::operator()<UnitArch>(UnitArch, float*) const;
template void WidenRowKernel::operator()<UnitArch>(UnitArch, const void*, DType, int64_t, float*,
                                                   const float*, int64_t) const;
template void NarrowRowKernel::operator()<UnitArch>(UnitArch, const float*, int64_t, void*,
                                                    DType) const;
template void FiniteRowKernel::operator()<UnitArch>(UnitArch, const float*, int64_t, bool*) const;
template void QuantizeRowKernel::operator()<UnitArch>(UnitArch, const float*, int64_t, int64_t, int8_t*,
                                                      float*, int64_t) const;
template void WeightedSumRowKernel::operator()<UnitArch>(UnitArch, const void* const*, const DType*,
                                                         const float*, int64_t, int64_t, void*,
                                                         DType, bool) const;
}  // namespace simdattn::detail
