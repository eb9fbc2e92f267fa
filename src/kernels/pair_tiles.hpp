// When the fused tile multiplies bf16 pairs, and the sizes it works in. No SIMD code: the plan
// sizes the tile's scratch from it (plan/scratch_pool.cpp), and the pair tile of the avx512bf16
// and amx units (kernels/pair_fused_tile_impl.hpp) takes the same decision from the same function.
//
// Both instructions multiply pairs of bf16 along the depth and add them into fp32, exactly:
// AMX's TDPBF16PS on tiles of 16 rows of 64 bytes (16 × 32 bf16 operands, or 16 × 16 fp32
// results), AVX512-BF16's VDPBF16PS on registers of 16 such pairs. The pair tile runs one layout
// for both (queries and values paired along the depth, weights rounded to bf16), so one step
// covers 32 keys (P·V) or 32 elements of a row (Q·Kᵀ), in groups of 16 rows.
#pragma once

#include <cstdint>

#include "isa/registry.hpp"
#include "kernels/tile_problem.hpp"

namespace simdattn::detail {

inline constexpr int64_t kPairRows = 16;
inline constexpr int64_t kPairDepth = 32;

// Whether a fused prefill tile of this problem can multiply bf16 pairs, whatever its columns: the
// avx512bf16 or amx ISA; q, k and v all bf16 (the products are exact on bf16 operands; fp32 or
// f16 inputs would have to be rounded to bf16 first, which the documented bound does not allow);
// head_dim a multiple of 32 and value_dim of 16 (whole groups, no masked depth). Every option
// (masks, windows, sinks, soft-cap, ALiBi, kv_lengths, packed and paged keys, lse, partial
// results) works on it as on the AVX-512 tile.
inline bool pair_tiles_fit(Isa isa, const TileProblem& problem) {
#if defined(__x86_64__) || defined(_M_X64)
  return (isa == Isa::amx || isa == Isa::avx512bf16) && problem.q.dtype == DType::bf16 &&
         problem.k.dtype == DType::bf16 && problem.v.dtype == DType::bf16 && problem.head_dim > 0 &&
         problem.head_dim % kPairDepth == 0 && problem.value_dim > 0 && problem.value_dim % kPairRows == 0;
#else
  (void)isa;
  (void)problem;
  return false;
#endif
}

// Whether a fused tile of this problem multiplies bf16 pairs: they fit, and its columns fill
// key-major groups of at least two registers (decoding's one-register tiles read rows in place
// instead).
inline bool uses_pair_tiles(Isa isa, const TileProblem& problem) {
  return pair_tiles_fit(isa, problem) && problem.panel_vectors >= 2 &&
         problem.columns_padded % (2 * kPairRows) == 0;
}

// Whether the pair tiles of this ISA stage key rows in TileScratch::tile_keys: AMX's do (groups
// of 16 rows not one stride apart, or short); VDPBF16PS reads K in place.
inline bool pair_tiles_stage_keys(Isa isa) {
#if defined(__x86_64__) || defined(_M_X64)
  return isa == Isa::amx;
#else
  (void)isa;
  return false;
#endif
}

// Query columns of a prefill tile that multiplies pairs, in place of BlockingSizes::tile_columns.
// AMX multiplies ~16 times faster than AVX-512's FMAs, so what a tile does once per key block
// whatever its columns (pairing V's rows, reading K and V from L2) costs as much as the products
// at the AVX-512 tile's 64 columns; wider tiles share it among more queries (docs/tuning.md).
inline constexpr int64_t kPairTileColumns = 128;

// Keys of a block rounded up to the depth step: the rows the scores, weights and paired value
// buffers hold.
inline int64_t pair_key_rows(int64_t keys) { return (keys + kPairDepth - 1) / kPairDepth * kPairDepth; }

}  // namespace simdattn::detail
