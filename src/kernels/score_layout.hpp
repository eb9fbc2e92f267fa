// How a block of logits scores[keys][columns] sits in registers: W columns of one key per
// register (key-major tiles), or, for decoding tiles narrower than a register, W / columns keys
// of every column (the dense layout). The logit transforms and the online softmax read it so.
#pragma once

#include <cstdint>
#include <limits>

#include <xsimd/xsimd.hpp>

#include "kernels/isa_namespace.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

inline constexpr float kMinusInfinity = -std::numeric_limits<float>::infinity();

// A block scores[rows][columns] is read W floats at a time. Key-major tiles have a multiple of W
// columns: a register holds W columns of one key. Decoding tiles may have fewer, a divisor of W
// (their dense layout): a register then holds W / columns keys of every column, lane l being key
// l / columns and column l % columns, so that no lane is padding.
template <class Arch>
inline int64_t keys_per_register(int64_t columns) {
  constexpr int64_t W = xsimd::batch<float, Arch>::size;
  return columns < W ? W / columns : 1;
}

// Lane l's key relative to the first key of its register (see keys_per_register).
template <class Arch>
inline xsimd::batch<float, Arch> lane_key_offsets(int64_t columns) {
  using Floats = xsimd::batch<float, Arch>;
  constexpr int64_t W = Floats::size;
  alignas(64) float offsets[W];
  for (int64_t l = 0; l < W; ++l) offsets[l] = static_cast<float>(columns < W ? l / columns : 0);
  return Floats::load_aligned(offsets);
}

// A per-column array as the score registers' lanes see it: the array itself, or in the dense
// layout its values repeated across one register, written into `tiled` (W floats).
template <class Arch>
inline const float* column_lanes(const float* per_column, int64_t columns, float* tiled) {
  constexpr int64_t W = xsimd::batch<float, Arch>::size;
  if (columns >= W) return per_column;
  for (int64_t l = 0; l < W; ++l) tiled[l] = per_column[l % columns];
  return tiled;
}

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE
