// Explicit instantiations of every per-ISA kernel for one architecture. Included only by the
// src/arch/kernels_<isa>.cpp units, each compiled with that ISA's flags.
#pragma once

#include "kernels/composed_tile_impl.hpp"
#include "kernels/fused_tile_impl.hpp"
#include "kernels/softmax_row_impl.hpp"
#include "kernels/stage_tiles_impl.hpp"

#define SIMDATTN_INSTANTIATE_KERNELS(ARCH)                                                       \
  namespace simdattn::detail {                                                                   \
  template void FusedTile::operator()<ARCH>(ARCH, const AttentionPlan&, const TileJob&,          \
                                            TileScratch&, const PartialSlots&) const;            \
  template void ComposedTile::operator()<ARCH>(ARCH, const AttentionPlan&, const TileJob&,       \
                                               TileScratch&) const;                              \
  template void QkScoresTile::operator()<ARCH>(ARCH, const AttentionPlan&, const TileJob&,       \
                                               TileScratch&) const;                              \
  template void WeightsVTile::operator()<ARCH>(ARCH, const AttentionPlan&, const TileJob&,       \
                                               TileScratch&) const;                              \
  template void SoftmaxRow::operator()<ARCH>(ARCH, float*, int64_t) const;                       \
  template void ExpArray::operator()<ARCH>(ARCH, const float*, float*, int64_t) const;           \
  template void TransposeSquare::operator()<ARCH>(ARCH, float*) const;                           \
  }
