// Where the kernels' key and value rows come from. A source hands a kernel a block of rows (a
// pointer to the first, a row stride, optional per-row scales); no kernel computes a K or V
// address itself. Built per tile by the kernel entry points (FusedTile, ComposedTile,
// QkScoresTile, WeightsVTile and the decoding tile behind FusedTile) through key_source() and
// value_source(); everything below them takes RowBlocks.
//
// Two sources exist today, one class (RowSource): the caller's fp32 memory read in place, and
// 16-bit or 8-bit storage (bf16, f16, int8 with scales) converted per block: rows() widens the
// requested rows into a per-thread buffer (TileScratch::widened_keys / widened_values, sized by
// ScratchPool for a key block) and returns {buffer, row stride, count}, so every kernel stays as it
// is. Where converting costs too much (decoding, bound by memory bandwidth), a kernel takes the
// raw rows instead, as StoredRows (stored_rows.hpp), and widens each register as it loads it:
// decode_scores and decode_values do, picked by the tile per dtype (decode_rows in
// decode_tile_impl.hpp). gemm_microkernel's broadcast of K and load of V could do the same.
//
// A paged cache (vLLM's block tables) plugs in here too: rows(first, count) is contiguous only
// within a page. The zero-copy form splits each key block at page boundaries: the source gains
// contiguous_rows(first), and the key-block loops of run_fused_tile, run_decode_tile_in_groups
// and run_qk_scores_tile / run_weights_v_tile take min(key_block, contiguous_rows) rows a step
// (run_composed_tile, which takes all keys at once, loops over pages for both products). The
// gathering form copies a block that crosses a page into the per-thread buffer as the converting
// source does, and no kernel changes. Either way the source is built from the TileProblem (a
// block table and page size instead of a TensorView) in key_source() and value_source()
// (head_rows.hpp).
// Decoding's prefetch reads up to RowBlock::available rows from the block's first only as hints
// (prefetches never fault), so a paged source may return fewer.
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/element_convert_impl.hpp"
#include "kernels/isa_namespace.hpp"
#include "simdattn/tensor.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

// How far ahead of the row being widened its source is prefetched.
inline constexpr int64_t kWidenPrefetchBytes = 4096;

// Rows of a key or value block as fp32: row r at first + r · stride (floats). `available` rows
// starting at first may be read (at least the count asked for): decoding prefetches ahead within
// them.
struct RowBlock {
  const float* first;
  int64_t stride;
  int64_t available;
};

// The rows of one (batch, kv head) of a k or v input.
template <class Arch>
struct RowSource {
  const void* row_zero;   // the head's row 0
  DType dtype;
  int64_t stride;         // elements from one row to the next
  int64_t width;          // elements a row (head_dim or value_dim)
  int64_t rows_in_head;   // Sk: rows that exist from row 0
  // int8 only: the scales of row 0 (scale_row_stride floats a row), one per scale_group elements.
  const float* scales;
  int64_t scale_row_stride;
  int64_t scale_group;
  float* buffer;          // widened rows, buffer_stride floats apart; unused for f32
  int64_t buffer_stride;

  // Rows [first_row, first_row + count): read in place for f32 (any count, one strided run),
  // else widened into the buffer, which holds a key block.
  RowBlock rows(int64_t first_row, int64_t count) const {
    if (dtype == DType::f32) {
      return {static_cast<const float*>(row_zero) + first_row * stride, stride,
              rows_in_head - first_row};
    }
    return widened_rows(first_row, count);
  }

 private:
  // Out of line and cold, so that the fp32 tiles' code stays as it was without the conversion.
  [[gnu::noinline, gnu::cold]] RowBlock widened_rows(int64_t first_row, int64_t count) const {
    const auto* bytes = static_cast<const unsigned char*>(row_zero);
    const int64_t row_bytes = stride * dtype_size(dtype);
    // The raw rows a few pages ahead: a 16-bit or int8 cache streams from memory as fp32 does, and
    // the hardware prefetchers stop at every 4 KiB page.
    const int64_t ahead_bytes = kWidenPrefetchBytes;
    const int64_t ahead_rows = row_bytes > 0 ? std::max<int64_t>(1, ahead_bytes / row_bytes) : 1;
    for (int64_t r = 0; r < count; ++r) {
      const int64_t row = first_row + r;
      if (row + ahead_rows < rows_in_head) {
        const auto* ahead = bytes + (row + ahead_rows) * row_bytes;
        for (int64_t line = 0; line < width * dtype_size(dtype); line += 64) {
          __builtin_prefetch(ahead + line, 0, 3);
        }
      }
      widen_row<Arch>(bytes + row * row_bytes, dtype, width, buffer + r * buffer_stride,
                      scales != nullptr ? scales + row * scale_row_stride : nullptr, scale_group);
    }
    return {buffer, buffer_stride, count};
  }
};

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE
