// Where the kernels' key and value rows come from. A source hands a kernel a block of rows (a
// pointer to the first, a row stride, optional per-row scales); no kernel computes a K or V
// address itself. Built per tile by the kernel entry points (FusedTile, ComposedTile,
// QkScoresTile, WeightsVTile and the decoding tile behind FusedTile) through key_source() and
// value_source(); everything below them takes RowBlocks.
//
// Today there is one source, StridedRowSource: the caller's fp32 memory read in place. The coming
// ones plug in here:
//
// - 16-bit or 8-bit storage (fp16, bf16, int8 with scales). Either converted per block: the
//   source owns a per-thread buffer of key_block × head_dim floats (one more TileScratch array,
//   sized by ScratchPool like the others), rows() converts the requested rows into it and returns
//   {buffer, head_dim, nullptr}, and every kernel stays as it is; or read in place by kernels
//   that take them: rows() returns the raw rows and, for int8, `scales` (one float per row), and
//   the micro-kernels gain a load that widens (and multiplies by the row's scale) where they now
//   load floats: gemm_microkernel's broadcast of K and load of V, decode_scores and
//   decode_values, rows_are_finite and accumulate_visible_values. RowBlock then needs an element
//   type; the entry points pick the kernel instantiation by it.
// - A paged cache (vLLM's block tables): rows(first, count) is contiguous only within a page.
//   The zero-copy form splits each key block at page boundaries: the source gains
//   contiguous_rows(first), and the key-block loops of run_fused_tile, run_decode_tile_in_groups
//   and run_qk_scores_tile / run_weights_v_tile take min(key_block, contiguous_rows) rows a step
//   (run_composed_tile, which takes all keys at once, loops over pages for both products). The
//   gathering form copies a block that crosses a page into the per-thread buffer as the
//   converting source does, and no kernel changes. Either way the source is built from the plan
//   (a block table and page size instead of a TensorView) in key_source() and value_source().
//   Decoding's prefetch reads rows_available rows past the block only as hints (prefetches
//   never fault), so a paged source may return fewer.
#pragma once

#include <cstdint>

namespace simdattn::detail {

// Rows of a key or value block: row r at first + r · stride (floats), scaled by scales[r] when
// scales is not null (nullptr for fp32 sources, the only ones the kernels accept today).
struct RowBlock {
  const float* first;
  int64_t stride;
  const float* scales;
};

// The fp32 source: the rows of one (batch, kv head) of a strided view, read where they are.
struct StridedRowSource {
  const float* row_zero;  // the head's row 0
  int64_t stride;         // floats from one row to the next

  // Rows [first_row, first_row + count): any count, since the rows form one strided run.
  RowBlock rows(int64_t first_row, int64_t /*count*/) const {
    return {row_zero + first_row * stride, stride, nullptr};
  }
};

}  // namespace simdattn::detail
