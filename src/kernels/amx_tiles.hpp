// When the fused tile multiplies on AMX tiles, and the sizes it works in. No SIMD code: the plan
// sizes the tile's scratch from it (plan/scratch_pool.cpp), and the amx unit's fused tile
// (kernels/amx_fused_tile_impl.hpp) takes the same decision from the same function.
#pragma once

#include <cstdint>

#include "isa/registry.hpp"
#include "kernels/tile_problem.hpp"

namespace simdattn::detail {

// An AMX tile holds 16 rows of 64 bytes: 16 × 32 bf16 operands, or 16 × 16 fp32 results. A
// bf16 product takes its depth in pairs, so one step covers 32 keys (P·V) or 32 elements of a
// row (Q·Kᵀ).
inline constexpr int64_t kAmxRows = 16;
inline constexpr int64_t kAmxDepth = 32;

// Whether a fused prefill tile of this problem can run on AMX, whatever its columns: the amx ISA;
// q, k and v all bf16 (the tiles multiply bf16 operands exactly; fp32 or f16 inputs would have to
// be rounded to bf16 first, which the documented bound does not allow); head_dim a multiple of 32
// and value_dim of 16 (whole tiles, no masked depth). Every option (masks, windows, sinks,
// soft-cap, ALiBi, kv_lengths, packed and paged keys, lse, partial results) works on it as on the
// AVX-512 tile.
inline bool amx_tiles_fit(Isa isa, const TileProblem& problem) {
#if defined(__x86_64__) || defined(_M_X64)
  return isa == Isa::amx && problem.q.dtype == DType::bf16 && problem.k.dtype == DType::bf16 &&
         problem.v.dtype == DType::bf16 && problem.head_dim > 0 && problem.head_dim % kAmxDepth == 0 &&
         problem.value_dim > 0 && problem.value_dim % kAmxRows == 0;
#else
  (void)isa;
  (void)problem;
  return false;
#endif
}

// Whether a fused tile of this problem runs on AMX: it fits, and its columns fill key-major tiles
// of at least two registers (decoding's one-register tiles read rows in place instead).
inline bool uses_amx_tiles(Isa isa, const TileProblem& problem) {
  return amx_tiles_fit(isa, problem) && problem.panel_vectors >= 2 &&
         problem.columns_padded % (2 * kAmxRows) == 0;
}

// Query columns of a prefill tile on AMX, in place of BlockingSizes::tile_columns. The tiles
// multiply ~16 times faster than AVX-512's FMAs, so what a tile does once per key block whatever
// its columns (pairing V's rows, reading K and V from L2) costs as much as the products at the
// AVX-512 tile's 64 columns; wider tiles share it among more queries (docs/tuning.md).
inline constexpr int64_t kAmxTileColumns = 128;

// Keys of a block rounded up to the tiles' depth step: the rows the scores, weights and paired
// value buffers hold.
inline int64_t amx_key_rows(int64_t keys) { return (keys + kAmxDepth - 1) / kAmxDepth * kAmxDepth; }

}  // namespace simdattn::detail
