// Where the kernels' key and value rows come from. A source hands a kernel a block of rows (a
// pointer to the first, a row stride, optional per-row scales); no kernel computes a K or V
// address itself. Built per tile by the kernel entry points (FusedTile, ComposedTile,
// QkScoresTile, WeightsVTile and the decoding tile behind FusedTile) through key_source() and
// value_source(); everything below them takes RowBlocks.
//
// One class (RowSource) reads every layout: the caller's fp32 memory in place; 16-bit or 8-bit
// storage (bf16, f16, int8 with scales) converted per block: rows() widens the requested rows
// into a per-thread buffer (TileScratch::widened_keys / widened_values, sized by ScratchPool for a
// key block) and returns {buffer, row stride, count}, so every kernel stays as it is. Where
// converting costs too much (decoding, bound by memory bandwidth), a kernel takes the raw rows
// instead, as StoredRows (stored_rows.hpp), and widens each register as it loads it:
// decode_scores and decode_values do, picked by the tile per dtype (decode_rows in
// decode_tile_impl.hpp).
//
// Packed batches (attention_varlen) start the head's rows at the sequence's first key. Paged
// caches (attention_paged, vLLM's block tables) are contiguous only within a page:
// contiguous_rows(first) says how far. rows() reads a block inside one page in place (fp32) and
// gathers one that crosses pages into the buffer, as the converting source does; decoding, bound
// by bandwidth, splits its key blocks at page ends instead and reads every page in place.
// Decoding's prefetch reads up to RowBlock::available rows from the block's first only as hints
// (prefetches never fault); a paged source offers the rest of the page.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

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

// The rows of one (batch, kv head) of a k or v input: contiguous (row r at row_zero + r · stride)
// or paged (row r in page pages[r / page_rows], at row r % page_rows of it).
template <class Arch>
struct RowSource {
  const void* row_zero;   // the head's row 0; paged: the head's row 0 of block 0 of the pool
  DType dtype;
  int64_t stride;         // elements from one row to the next
  int64_t width;          // elements a row (head_dim or value_dim)
  int64_t rows_in_head;   // rows that exist from row 0 (the sequence's keys when packed or paged)
  // int8 only: the scales of row 0 (scale_row_stride floats a row), one per scale_group elements.
  const float* scales;
  int64_t scale_row_stride;
  int64_t scale_group;
  float* buffer;          // gathered or widened rows, buffer_stride floats apart
  int64_t buffer_stride;
  // Paged only (pages null otherwise): the sequence's row of the block table, the rows a page,
  // and the elements (scales) from one block of the pool to the next.
  const int32_t* pages;
  int64_t page_rows;
  int64_t page_stride;
  int64_t scale_page_stride;

  // The rows from `first` on that lie one stride apart (to the end of first's page when paged).
  int64_t contiguous_rows(int64_t first) const {
    return pages == nullptr ? rows_in_head - first : page_rows - first % page_rows;
  }
  // Row `row` as stored, and its scales (int8).
  const unsigned char* row_address(int64_t row) const {
    return static_cast<const unsigned char*>(row_zero) + element_offset(row, stride, page_stride) * dtype_size(dtype);
  }
  const float* scale_address(int64_t row) const {
    return scales == nullptr ? nullptr : scales + element_offset(row, scale_row_stride, scale_page_stride);
  }

  // Rows [first_row, first_row + count): read in place for f32 when they lie one stride apart
  // (any count unless paged), else gathered or widened into the buffer, which holds a key block.
  RowBlock rows(int64_t first_row, int64_t count) const {
    if (dtype == DType::f32 && (pages == nullptr || count <= contiguous_rows(first_row))) {
      return {reinterpret_cast<const float*>(row_address(first_row)), stride,
              contiguous_rows(first_row)};
    }
    return widened_rows(first_row, count);
  }

 private:
  int64_t element_offset(int64_t row, int64_t row_stride, int64_t block_stride) const {
    if (pages == nullptr) return row * row_stride;
    return pages[row / page_rows] * block_stride + row % page_rows * row_stride;
  }

  // Out of line and cold, so that the fp32 tiles' code stays as it was without the conversion.
  [[gnu::noinline, gnu::cold]] RowBlock widened_rows(int64_t first_row, int64_t count) const {
    const int64_t row_bytes = width * dtype_size(dtype);
    // The raw rows a few pages ahead: a 16-bit or int8 cache streams from memory as fp32 does, and
    // the hardware prefetchers stop at every 4 KiB page.
    const int64_t ahead_rows = row_bytes > 0 ? std::max<int64_t>(1, kWidenPrefetchBytes / row_bytes) : 1;
    for (int64_t r = 0; r < count; ++r) {
      const int64_t row = first_row + r;
      if (row + ahead_rows < rows_in_head) {
        const unsigned char* ahead = row_address(row + ahead_rows);
        for (int64_t line = 0; line < row_bytes; line += 64) __builtin_prefetch(ahead + line, 0, 3);
      }
      float* destination = buffer + r * buffer_stride;
      if (dtype == DType::f32) {
        std::memcpy(destination, row_address(row), static_cast<size_t>(row_bytes));
      } else {
        widen_row<Arch>(row_address(row), dtype, width, destination, scale_address(row), scale_group);
      }
    }
    return {buffer, buffer_stride, count};
  }
};

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE
