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
    }
  }
  return c;
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
