// The query columns of a work item (column c = g · positions + t: query head kv_head · group + g
// at position query_begin + t) and the keys each sees: the bookkeeping every tile starts with.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>

#include "kernels/isa_namespace.hpp"
#include "kernels/tile_kernels.hpp"
#include "kernels/tile_problem.hpp"
#include "kernels/visible_keys.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

// A column's sink-token gap within its visible range after clipping to the job's keys: a gap
// that reaches either end of the range shrinks the range instead, so a gap is left only strictly
// inside it (and a range wholly inside the gap becomes empty).
inline void clip_sink_token_gap(const TileProblem& problem, const TileJob& job, ColumnInfo& column) {
  const KeyRange gap = sink_token_gap(problem, job.batch, column.position);
  const int64_t begin = std::max(gap.begin, column.visible_begin);
  const int64_t end = std::min(gap.end, column.visible_end);
  if (begin >= end) return;
  if (begin == column.visible_begin && end == column.visible_end) {
    column.visible_end = column.visible_begin;
  } else if (begin == column.visible_begin) {
    column.visible_begin = end;
  } else if (end == column.visible_end) {
    column.visible_end = begin;
  } else {
    column.gap_begin = begin;
    column.gap_end = end;
  }
}

// The query columns of a job: column c = g · positions + t is query head kv_head · group + g at
// position query_begin + t. Returns the number of real columns; the padded ones after them carry
// zeros. Also fills each column's visible key range, clipped to the job's keys.
inline int64_t describe_columns(const TileProblem& problem, const TileJob& job,
                                TileScratch& scratch) {
  const int64_t positions = job.query_end - job.query_begin;
  int64_t c = 0;
  for (int64_t g = 0; g < problem.group; ++g) {
    for (int64_t t = 0; t < positions; ++t, ++c) {
      ColumnInfo& column = scratch.columns[c];
      column.head = job.kv_head * problem.group + g;
      column.position = job.query_begin + t;
      const KeyRange range = visible_keys(problem, job.batch, column.position);
      column.visible_begin = std::max(range.begin, job.key_begin);
      column.visible_end = std::min(range.end, job.key_end);
      column.gap_begin = column.gap_end = 0;
      if (problem.sink_tokens > 0) clip_sink_token_gap(problem, job, column);
    }
  }
  return c;
}

// The keys no real column of the tile sees between `keys`' ends (sink tokens, then every
// column's window further on): the key loops skip them. Empty ({end, end}) when there are none.
inline KeyRange keys_hidden_from_tile(const TileProblem& problem, const TileScratch& scratch,
                                      int64_t real_columns, KeyRange keys) {
  const KeyRange none{keys.end, keys.end};
  if (problem.sink_tokens <= 0) return none;
  KeyRange hole{keys.begin, keys.end};
  bool some_gap = false;
  for (int64_t c = 0; c < real_columns; ++c) {
    const ColumnInfo& column = scratch.columns[c];
    if (column.visible_begin >= column.visible_end) continue;
    if (column.gap_begin >= column.gap_end) return none;  // a column that sees all of its hull
    some_gap = true;
    hole.begin = std::max(hole.begin, column.gap_begin);
    hole.end = std::min(hole.end, column.gap_end);
  }
  return some_gap && !hole.empty() ? hole : none;
}

// The rows of the key block that starts at first_key: at most key_block, ending at the hole or
// at the end of the tile's keys.
inline int64_t key_block_rows(KeyRange keys, KeyRange hole, int64_t first_key, int64_t key_block) {
  return std::min(key_block, (first_key < hole.begin ? hole.begin : keys.end) - first_key);
}

// Where the key block after one that ends at block_end starts: past the hole.
inline int64_t next_key_block(KeyRange hole, int64_t block_end) {
  return block_end == hole.begin ? hole.end : block_end;
}

// The keys any real column sees: [begin, end), empty when none does.
inline KeyRange keys_seen_by_tile(const TileScratch& scratch, int64_t real_columns) {
  KeyRange range{std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min()};
  for (int64_t c = 0; c < real_columns; ++c) {
    const ColumnInfo& column = scratch.columns[c];
    if (column.visible_begin >= column.visible_end) continue;
    range.begin = std::min(range.begin, column.visible_begin);
    range.end = std::max(range.end, column.visible_end);
  }
  if (range.begin >= range.end) return {0, 0};
  return range;
}

// Whether every real column sees every key of [first_key, first_key + rows).
inline bool every_column_sees(const TileScratch& scratch, int64_t real_columns, int64_t first_key,
                              int64_t rows) {
  for (int64_t c = 0; c < real_columns; ++c) {
    const ColumnInfo& column = scratch.columns[c];
    if (column.visible_begin > first_key || column.visible_end < first_key + rows) return false;
    if (column.gap_begin < first_key + rows && column.gap_end > first_key) return false;
  }
  return true;
}

// A tile's query columns: how many are real, how many the panels make, and the keys they see.
struct TileColumns {
  int64_t real;
  int64_t padded;
  KeyRange keys;
};

inline TileColumns start_tile(const TileProblem& problem, const TileJob& job, TileScratch& scratch,
                              int64_t panel) {
  const int64_t real = describe_columns(problem, job, scratch);
  return {real, (real + panel - 1) / panel * panel, keys_seen_by_tile(scratch, real)};
}

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE
