// attention() for a work item with at most one register of query columns: decoding, where a kv
// head's few query rows (its group's heads, a few positions each) meet many keys. The key-major
// micro-kernel would fill a register with those few columns and leave most lanes idle; here the
// vectors run along head_dim instead, so every lane does useful work and the kernel keeps up with
// the memory streaming K and V. Logits still land key-major (scores[key][column]), so the logit
// transforms and the online softmax are the ones every tile uses; the output accumulates as
// O[column][value] and is read through an AccumulatorLayout.
#pragma once

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

#include <algorithm>
#include <array>
#include <cassert>
#include <type_traits>

#include "kernels/isa_namespace.hpp"
#include "isa/registry.hpp"
#include "kernels/gemm_microkernel.hpp"
#include "kernels/head_rows.hpp"
#include "kernels/logit_transforms.hpp"
#include "kernels/online_softmax.hpp"
#include "kernels/decode_page_runs.hpp"
#include "kernels/query_packing.hpp"
#include "kernels/row_sums.hpp"
#include "kernels/stored_rows.hpp"
#include "kernels/tile_columns.hpp"
#include "kernels/tile_outputs.hpp"
#include "kernels/value_accumulation.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

// Query columns handled together: each key row loaded once serves all of them. A tile with a
// single query column (multi-head attention, one token) takes groups of one instead, so that no
// FMA works for padding.
inline constexpr int kDecodeColumnGroup = 4;

// scores[r][c] = Σ_d packed[c][d] · k_r[d] for keys [0, rows) and the groups' columns, padded_columns
// floats a key, packed holding the scaled queries row by row (head_dim_padded floats each, zero
// beyond head_dim and past the real columns). keys.available key rows exist from the first; the
// block's value rows are prefetched. W/Group keys × Group columns of dot products are reduced
// together by one haddp, whose lanes are those 16 (AVX-512), 8 or 4 sums. int8 keys are widened
// and multiplied by their scale register by register, as widen_row does, before the FMA; with
// kScaleSums (one scale a row) the scale multiplies each key's sums instead.
template <class Arch, int Group, DType kStored, bool kScaleSums>
inline void decode_scores(const float* packed, int64_t head_dim, int64_t head_dim_padded,
                          int64_t column_groups, const StoredRows<Arch, kStored>& keys,
                          int64_t rows, const StoredRows<Arch, kStored>& values,
                          int64_t value_dim, float* scores, int64_t padded_columns) {
  using Floats = xsimd::batch<float, Arch>;
  using Keys = StoredRows<Arch, kStored>;
  constexpr int W = static_cast<int>(Floats::size);
  static_assert(W % Group == 0, "a register holds whole groups of sums");
  constexpr int KeysPerStep = W / Group;
  constexpr bool kScaleRegisters = Keys::kScaled && !kScaleSums;
  const int64_t full = head_dim - head_dim % W;
  const int64_t span = keys.group_span(head_dim);
  const RowSums<Arch> row_sums;
  // As many bytes ahead as for fp32 rows: narrower rows, more of them.
  constexpr int64_t kPrefetchRows = kDecodePrefetchRows * int64_t{sizeof(float)} / int64_t{sizeof(typename Keys::Storage)};
  for (int64_t r0 = 0; r0 < rows; r0 += KeysPerStep) {
    // Keys past the block's end repeat its last key; their sums are dropped.
    int64_t key_index[KeysPerStep];
    const typename Keys::Storage* key_rows[KeysPerStep];
    for (int kk = 0; kk < KeysPerStep; ++kk) {
      key_index[kk] = std::min(r0 + kk, rows - 1);
      key_rows[kk] = keys.row(key_index[kk]);
    }
    // The key rows a few pages ahead, and this block's value rows, which P·V reads next.
    if (r0 + kPrefetchRows < keys.available) keys.prefetch(r0 + kPrefetchRows, KeysPerStep, head_dim);
    values.prefetch(r0, std::min<int64_t>(KeysPerStep, rows - r0), value_dim);
    // Lane i: the scale of the key whose sum haddp puts there (kScaleSums).
    [[maybe_unused]] Floats sum_scales;
    if constexpr (kScaleSums) {
      alignas(64) float lanes[W];
      for (int i = 0; i < W; ++i) lanes[i] = keys.row_scales(key_index[i / Group])[0];
      sum_scales = Floats::load_aligned(lanes);
    }
    for (int64_t g = 0; g < column_groups; ++g) {
      const float* queries = packed + g * Group * head_dim_padded;
      Floats acc[W];
#pragma GCC unroll 16
      for (int i = 0; i < W; ++i) acc[i] = Floats(0.0f);
      // span is the scale group or the whole row: group_start / scale_group counts the groups.
      int64_t scale_column = 0;
      for (int64_t group_start = 0; group_start < full; group_start += span, ++scale_column) {
        [[maybe_unused]] Floats scale[KeysPerStep];
        if constexpr (kScaleRegisters) {
          for (int kk = 0; kk < KeysPerStep; ++kk) scale[kk] = Floats(keys.row_scales(key_index[kk])[scale_column]);
        }
        const int64_t group_end = std::min(group_start + span, full);
        for (int64_t d = group_start; d < group_end; d += W) {
#pragma GCC unroll 16
          for (int kk = 0; kk < KeysPerStep; ++kk) {
            Floats key = Keys::load(key_rows[kk], d);
            if constexpr (kScaleRegisters) key = key * scale[kk];
#pragma GCC unroll 4
            for (int cc = 0; cc < Group; ++cc) {
              acc[kk * Group + cc] = multiply_add<Arch>(
                  Floats::load_aligned(queries + cc * head_dim_padded + d), key, acc[kk * Group + cc]);
            }
          }
        }
      }
      // sums[kk · Group + cc] is key kk's logit for column cc: Group adjacent floats a key.
      alignas(64) float sums[W];
      row_sums(acc).store_aligned(sums);
      for (int64_t d = full; d < head_dim; ++d) {
        for (int i = 0; i < W; ++i) {
          const float query = queries[(i % Group) * head_dim_padded + d];
          const int64_t key = key_index[i / Group];
          sums[i] += query * (kScaleSums ? keys.unscaled_element(key, d) : keys.element(key, d));
        }
      }
      if constexpr (kScaleSums) (Floats::load_aligned(sums) * sum_scales).store_aligned(sums);
      for (int kk = 0; kk < KeysPerStep && r0 + kk < rows; ++kk) {
        std::copy(sums + kk * Group, sums + (kk + 1) * Group, scores + (r0 + kk) * padded_columns + g * Group);
      }
    }
  }
}

// O[c][n] += Σ_r p[r][c] · v_r[n] for a group of Group columns and Vectors registers of values
// starting at n0: the group's accumulators stay in registers across the keys. kScaleWeights: an
// int8 row's one scale multiplies its Group weights rather than its Vectors registers of values.
template <class Arch, int Group, int Vectors, DType kStored, bool kScaleWeights>
inline void decode_values_chunk(const float* probabilities, int64_t padded_columns, int64_t rows,
                                const StoredRows<Arch, kStored>& values, int64_t first_column,
                                int64_t n0, float* output, int64_t output_stride) {
  using Floats = xsimd::batch<float, Arch>;
  using Values = StoredRows<Arch, kStored>;
  constexpr int64_t W = Floats::size;
  Floats acc[Group][Vectors];
#pragma GCC unroll 4
  for (int cc = 0; cc < Group; ++cc) {
#pragma GCC unroll 8
    for (int v = 0; v < Vectors; ++v) {
      acc[cc][v] = Floats::load_aligned(output + (first_column + cc) * output_stride + n0 + v * W);
    }
  }
  constexpr bool kScaleRegisters = Values::kScaled && !kScaleWeights;
  // int8: the scale of each register's group (one register never straddles two).
  [[maybe_unused]] int64_t scale_index[Vectors];
  if constexpr (kScaleRegisters) {
    for (int v = 0; v < Vectors; ++v) scale_index[v] = (n0 + v * W) / values.scale_group;
  }
  for (int64_t r = 0; r < rows; ++r) {
    Floats value[Vectors];
    const typename Values::Storage* row = values.row(r);
#pragma GCC unroll 8
    for (int v = 0; v < Vectors; ++v) {
      value[v] = Values::load(row, n0 + v * W);
      if constexpr (kScaleRegisters) value[v] = value[v] * Floats(values.row_scales(r)[scale_index[v]]);
    }
    const float* p = probabilities + r * padded_columns + first_column;
    [[maybe_unused]] Floats row_scale;
    if constexpr (kScaleWeights) row_scale = Floats(values.row_scales(r)[0]);
#pragma GCC unroll 4
    for (int cc = 0; cc < Group; ++cc) {
      Floats weight(p[cc]);
      if constexpr (kScaleWeights) weight = weight * row_scale;
#pragma GCC unroll 8
      for (int v = 0; v < Vectors; ++v) acc[cc][v] = multiply_add<Arch>(weight, value[v], acc[cc][v]);
    }
  }
#pragma GCC unroll 4
  for (int cc = 0; cc < Group; ++cc) {
#pragma GCC unroll 8
    for (int v = 0; v < Vectors; ++v) {
      acc[cc][v].store_aligned(output + (first_column + cc) * output_stride + n0 + v * W);
    }
  }
}

// O[c][n] += Σ_r p[r][c] · v_r[n] for every column group and value. A group of one column keeps
// twice the value registers in flight, so that it still has as many FMA chains. kScaleWeights: as
// decode_values_chunk, for rows with one scale each; worth it where Group < Vectors.
template <class Arch, int Group, DType kStored, bool kScaleWeights = false>
inline void decode_values(const float* probabilities, int64_t padded_columns, int64_t column_groups,
                          int64_t rows, const StoredRows<Arch, kStored>& values, int64_t value_dim,
                          float* output, int64_t output_stride) {
  constexpr int64_t W = xsimd::batch<float, Arch>::size;
  for (int64_t g = 0; g < column_groups; ++g) {
    const int64_t first_column = g * Group;
    constexpr int Vectors = blocking_of<Arch>().decode_value_vectors * (Group == 1 ? 2 : 1);
    int64_t n0 = 0;
    for (; n0 + Vectors * W <= value_dim; n0 += Vectors * W) {
      decode_values_chunk<Arch, Group, Vectors, kStored, kScaleWeights>(
          probabilities, padded_columns, rows, values, first_column, n0, output, output_stride);
    }
    for (; n0 + W <= value_dim; n0 += W) {
      decode_values_chunk<Arch, Group, 1, kStored, kScaleWeights>(
          probabilities, padded_columns, rows, values, first_column, n0, output, output_stride);
    }
    for (int64_t cc = 0; cc < Group; ++cc) {
      float* out = output + (first_column + cc) * output_stride;
      for (int64_t r = 0; r < rows; ++r) {
        const float p = probabilities[r * padded_columns + first_column + cc];
        for (int64_t n = n0; n < value_dim; ++n) out[n] += p * values.element(r, n);
      }
    }
  }
}

// Rows [first, first + count) of a source as a decoding kernel reads them: kStored f32 takes
// RowSource::rows (fp32 in place, or 16-bit/int8 widened into the thread's buffer), any other
// kStored the stored rows in place. At most `limit` rows from first are offered for prefetching.
// A paged source read in place also names the page after first's (StoredRows::next_first), up to
// the same limit, so that prefetching runs on across page ends. Inlined: called out of line, its
// result lives in memory and the fp32 tile ran 10% slower (paired A/B, decode_gqa).
template <class Arch, DType kStored>
[[gnu::always_inline]] inline StoredRows<Arch, kStored> decode_rows(const RowSource<Arch>& source,
                                                                    int64_t first, int64_t count,
                                                                    int64_t limit) {
  using Storage = typename StorageOf<kStored>::type;
  StoredRows<Arch, kStored> rows;
  if constexpr (kStored == DType::f32) {
    const RowBlock block = source.rows(first, count);
    rows = {block.first, block.stride, std::min(block.available, limit), nullptr, 0, 1};
    if (source.dtype != DType::f32) return rows;  // widened into the buffer: nothing follows it
  } else {
    assert(source.dtype == kStored);
    rows = {reinterpret_cast<const Storage*>(source.row_address(first)),
            source.stride,
            std::min(source.contiguous_rows(first), limit),
            source.scale_address(first),
            source.scale_row_stride,
            source.scale_group};
  }
  const int64_t page_end = source.contiguous_rows(first);
  if (source.pages != nullptr && page_end < limit) {
    rows.next_first = reinterpret_cast<const Storage*>(source.row_address(first + page_end));
    rows.next_available = std::min(source.page_rows, limit - page_end);
  }
  return rows;
}

// The decoding tile with query columns in groups of Group (see kDecodeColumnGroup), K and V read
// as kStored (decode_rows), from a paged cache when kPaged; kOneScaleARow: int8 K and V rows with
// one scale each, which multiplies a key's dot products and a value row's weights instead of every
// element (a compile-time choice: a branch per block in the 16-bit tiles cost them 13%, paired A/B
// on decode_b8, by how GCC compiled them). Paged and contiguous sources are
// compiled apart: the paged tile's code for page ends, never run on contiguous rows, still cost
// the contiguous tile 5-10% (paired A/B on decode_gqa and decode_b8) by how GCC compiled it.
template <class Arch, int Group, DType kStored, bool kPaged, bool kOneScaleARow>
inline void run_decode_tile_on(const TileProblem& problem, const TileJob& job,
                               TileScratch& scratch, const PartialSlots& partials,
                               int64_t real_columns) {
  using Floats = xsimd::batch<float, Arch>;
  constexpr int64_t W = Floats::size;
  const int64_t column_groups = (real_columns + Group - 1) / Group;
  const int64_t grouped_columns = column_groups * Group;
  // Scores in the dense layout (keys_per_register) when the groups' columns divide a register:
  // 4 columns fill a 16-float register with 4 keys, where a row per key would leave 12 lanes idle.
  const int64_t padded_columns = W % grouped_columns == 0 ? grouped_columns : W;
  assert(real_columns <= padded_columns && padded_columns <= problem.columns_padded);
  const int64_t head_dim_padded = (problem.head_dim + W - 1) / W * W;
  const int64_t value_dim_padded = (problem.value_dim + W - 1) / W * W;
  const KeyRange keys = keys_seen_by_tile(scratch, real_columns);
  const KeyRange hole = keys_hidden_from_tile(problem, scratch, real_columns, keys);

  // Queries row by row, scaled to base-2 logits; zero rows for the group's padding.
  float* packed = scratch.packed_queries;
  std::fill(packed, packed + grouped_columns * head_dim_padded, 0.0f);
  const float scale = base2_logit_scale(problem);
  for (int64_t c = 0; c < real_columns; ++c) {
    const float* row = float_row<Arch>(problem.q, job.batch, scratch.columns[c].head,
                                       scratch.columns[c].position, scratch.widened_queries);
    for (int64_t d = 0; d < problem.head_dim; ++d) packed[c * head_dim_padded + d] = scale * row[d];
  }
  prepare_alibi(problem, job, scratch, real_columns, padded_columns);
  std::fill(scratch.running_max, scratch.running_max + padded_columns, kMinusInfinity);
  std::fill(scratch.running_sum, scratch.running_sum + padded_columns, 0.0f);
  seed_sink_logits(problem, job, scratch, real_columns);
  float* output = scratch.accumulator;  // O[column][value], value_dim_padded wide
  std::fill(output, output + grouped_columns * value_dim_padded, 0.0f);
  const AccumulatorLayout layout{1, value_dim_padded};

  const RowSource<Arch> key_rows = key_source<Arch>(problem, job, scratch);
  const RowSource<Arch> value_rows = value_source<Arch>(problem, job, scratch);
  if constexpr (kPaged) {
    // A paged cache: a key block is up to page_runs() pages, their parts read side by side
    // (PageRuns, decode_page_runs.hpp), every page in place. A source widened into the thread's
    // buffer (kStored f32 over a cache this unit cannot read in place) holds one page's rows at a
    // time, so its blocks stay within one page.
    const int most_runs = kStored == DType::f32 && key_rows.dtype != DType::f32 ? 1 : page_runs<Arch, Group>();
    for (int64_t first_key = keys.begin, rows = 0; first_key < keys.end;
         first_key = next_key_block(hole, first_key + rows)) {
      const int64_t block = key_block_rows(keys, hole, first_key, problem.key_block);
      PageRuns<Arch, kStored> key_pages, value_pages;
      // Rows past the block, up to the tile's last key, are offered for prefetching only.
      for (rows = 0; key_pages.runs < most_runs && rows < block;) {
        const int run = key_pages.runs;
        const int64_t count = std::min(block - rows, key_rows.contiguous_rows(first_key + rows));
        const int64_t limit = keys.end - first_key - rows;
        key_pages.rows[run] = decode_rows<Arch, kStored>(key_rows, first_key + rows, count, limit);
        value_pages.rows[run] = decode_rows<Arch, kStored>(value_rows, first_key + rows, count, limit);
        key_pages.begin[run] = value_pages.begin[run] = rows;
        key_pages.count[run] = value_pages.count[run] = count;
        key_pages.runs = value_pages.runs = run + 1;
        rows += count;
      }
      // As the contiguous loop below: zeros past the groups' columns and the last key.
      if (grouped_columns < padded_columns) {
        for (int64_t r = 0; r < rows; ++r) {
          std::fill(scratch.scores + r * padded_columns, scratch.scores + (r + 1) * padded_columns, 0.0f);
        }
      }
      const int64_t floats = rows * padded_columns;
      std::fill(scratch.scores + floats, scratch.scores + (floats + W - 1) / W * W, 0.0f);
      decode_scores_of_pages<Arch, Group, kStored, kOneScaleARow>(packed, problem.head_dim, head_dim_padded,
                                                                  column_groups, key_pages, value_pages,
                                                                  problem.value_dim, scratch.scores, padded_columns);
      const bool some_key_hidden =
          transform_logits<Arch>(problem, job, scratch, real_columns, padded_columns, first_key, rows);
      online_softmax_block<Arch>(scratch.scores, rows, padded_columns, scratch.running_max,
                                 scratch.running_sum, scratch.correction);
      for (int64_t c = 0; c < grouped_columns; ++c) {
        const Floats correction(c < real_columns ? scratch.correction[c] : 0.0f);
        float* row = output + c * value_dim_padded;
        for (int64_t n = 0; n < value_dim_padded; n += W) (Floats::load_aligned(row + n) * correction).store_aligned(row + n);
      }
      if (!some_key_hidden) {
        decode_values_of_pages<Arch, Group, kStored, kOneScaleARow>(scratch.scores, padded_columns, column_groups,
                                                                    value_pages, problem.value_dim, output,
                                                                    value_dim_padded);
        continue;
      }
      // A hidden key's weight is 0, and 0 · inf would be NaN: each page's values as floats,
      // checked before the fast loop, as below.
      for (int run = 0; run < value_pages.runs; ++run) {
        const int64_t begin = value_pages.begin[run], count = value_pages.count[run];
        PageRuns<Arch, DType::f32> float_values;
        if constexpr (kStored == DType::f32) {
          float_values.rows[0] = value_pages.rows[run];
        } else {
          float_values.rows[0] = decode_rows<Arch, DType::f32>(value_rows, first_key + begin, count,
                                                              keys.end - first_key - begin);
        }
        float_values.begin[0] = begin;
        float_values.count[0] = count;
        float_values.runs = 1;
        const StoredRows<Arch, DType::f32>& page = float_values.rows[0];
        if (rows_are_finite<Arch>(page.first, page.stride, count, problem.value_dim)) {
          decode_values_of_pages<Arch, Group, DType::f32, false>(scratch.scores, padded_columns, column_groups,
                                                                 float_values, problem.value_dim, output,
                                                                 value_dim_padded);
        } else {
          accumulate_visible_values(scratch.scores + begin * padded_columns, count, padded_columns, real_columns,
                                    page.first, page.stride, problem.value_dim, output, layout);
        }
      }
    }
  } else {
    for (int64_t first_key = keys.begin, rows = 0; first_key < keys.end;
         first_key = next_key_block(hole, first_key + rows)) {
      // (A contiguous source's rows all lie one stride apart: the min changes nothing.)
      rows = std::min(key_block_rows(keys, hole, first_key, problem.key_block),
                      key_rows.contiguous_rows(first_key));
      // Columns past the groups, and the lanes of the last register past the last key, hold zeros
      // until the softmax (the scores are written for the groups' columns only).
      if (grouped_columns < padded_columns) {
        for (int64_t r = 0; r < rows; ++r) {
          std::fill(scratch.scores + r * padded_columns, scratch.scores + (r + 1) * padded_columns, 0.0f);
        }
      }
      const int64_t floats = rows * padded_columns;
      std::fill(scratch.scores + floats, scratch.scores + (floats + W - 1) / W * W, 0.0f);
      // Rows past this block, up to the tile's last key, are prefetched where the source reads in
      // place (a widened block holds just its rows), never used.
      const int64_t limit = keys.end - first_key;
      const StoredRows<Arch, kStored> key_block = decode_rows<Arch, kStored>(key_rows, first_key, rows, limit);
      const StoredRows<Arch, kStored> value_block = decode_rows<Arch, kStored>(value_rows, first_key, rows, limit);
      decode_scores<Arch, Group, kStored, kOneScaleARow>(packed, problem.head_dim, head_dim_padded,
                                                         column_groups, key_block, rows, value_block,
                                                         problem.value_dim, scratch.scores, padded_columns);
      const bool some_key_hidden =
          transform_logits<Arch>(problem, job, scratch, real_columns, padded_columns, first_key, rows);
      online_softmax_block<Arch>(scratch.scores, rows, padded_columns, scratch.running_max,
                                 scratch.running_sum, scratch.correction);
      for (int64_t c = 0; c < grouped_columns; ++c) {
        const Floats correction(c < real_columns ? scratch.correction[c] : 0.0f);
        float* row = output + c * value_dim_padded;
        for (int64_t n = 0; n < value_dim_padded; n += W) (Floats::load_aligned(row + n) * correction).store_aligned(row + n);
      }
      if (!some_key_hidden) {
        decode_values<Arch, Group, kStored, kOneScaleARow>(scratch.scores, padded_columns, column_groups, rows,
                                                           value_block, problem.value_dim, output, value_dim_padded);
        continue;
      }
      // A hidden key's weight is 0, and 0 · inf would be NaN: the values as floats (widened if
      // stored narrower, the same floats the stored rows give), checked before the fast loop.
      StoredRows<Arch, DType::f32> float_values;
      if constexpr (kStored == DType::f32) {
        float_values = value_block;
      } else {
        float_values = decode_rows<Arch, DType::f32>(value_rows, first_key, rows, limit);
      }
      if (rows_are_finite<Arch>(float_values.first, float_values.stride, rows, problem.value_dim)) {
        decode_values<Arch, Group>(scratch.scores, padded_columns, column_groups, rows, float_values,
                                   problem.value_dim, output, value_dim_padded);
      } else {
        accumulate_visible_values(scratch.scores, rows, padded_columns, real_columns, float_values.first,
                                  float_values.stride, problem.value_dim, output, layout);
      }
    }
  }
  finish_online_tile<Arch>(problem, job, scratch, partials, real_columns, layout);
}

template <class Arch, int Group, DType kStored, bool kOneScaleARow = false>
inline void run_decode_tile_in_groups(const TileProblem& problem, const TileJob& job,
                                      TileScratch& scratch, const PartialSlots& partials,
                                      int64_t real_columns) {
  if (problem.block_table != nullptr) {
    run_decode_tile_on<Arch, Group, kStored, true, kOneScaleARow>(problem, job, scratch, partials, real_columns);
  } else {
    run_decode_tile_on<Arch, Group, kStored, false, kOneScaleARow>(problem, job, scratch, partials, real_columns);
  }
}

// The decoding tile for the stored K/V dtype kStored: read in place where the unit can
// (StoredRows::can_read_in_place), else widened a block at a time; int8 K and V with one scale a
// row take it per dot product and per weight (run_decode_tile_on's kOneScaleARow).
template <class Arch, int Group, DType kStored>
inline void run_decode_tile_stored(const TileProblem& problem, const TileJob& job, TileScratch& scratch,
                                   const PartialSlots& partials, int64_t real_columns) {
  const auto group_of = [](const ConstTensorView& scales, int64_t width) {
    return scales.data != nullptr ? width / scales.shape[3] : width;
  };
  if constexpr (!StoredRows<Arch, kStored>::kUnitConverts) {
    run_decode_tile_in_groups<Arch, Group, DType::f32>(problem, job, scratch, partials, real_columns);
  } else if (StoredRows<Arch, kStored>::can_read_in_place(group_of(problem.k_scale, problem.head_dim), problem.head_dim) &&
      StoredRows<Arch, kStored>::can_read_in_place(group_of(problem.v_scale, problem.value_dim), problem.value_dim)) {
    if constexpr (StoredRows<Arch, kStored>::kScaled) {
      if (group_of(problem.k_scale, problem.head_dim) >= problem.head_dim &&
          group_of(problem.v_scale, problem.value_dim) >= problem.value_dim) {
        return run_decode_tile_in_groups<Arch, Group, kStored, true>(problem, job, scratch, partials, real_columns);
      }
    }
    run_decode_tile_in_groups<Arch, Group, kStored>(problem, job, scratch, partials, real_columns);
  } else {
    run_decode_tile_in_groups<Arch, Group, DType::f32>(problem, job, scratch, partials, real_columns);
  }
}

template <class Arch, int Group>
inline void run_decode_tile_with_group(const TileProblem& problem, const TileJob& job,
                                       TileScratch& scratch, const PartialSlots& partials,
                                       int64_t real_columns) {
  switch (problem.k.dtype) {
    case DType::bf16:
      return run_decode_tile_stored<Arch, Group, DType::bf16>(problem, job, scratch, partials, real_columns);
    case DType::f16:
      return run_decode_tile_stored<Arch, Group, DType::f16>(problem, job, scratch, partials, real_columns);
    case DType::i8:
      return run_decode_tile_stored<Arch, Group, DType::i8>(problem, job, scratch, partials, real_columns);
    case DType::f32:
      break;
  }
  run_decode_tile_in_groups<Arch, Group, DType::f32>(problem, job, scratch, partials, real_columns);
}

template <class Arch>
inline void run_decode_tile(const TileProblem& problem, const TileJob& job, TileScratch& scratch,
                            const PartialSlots& partials) {
  const int64_t real_columns = describe_columns(problem, job, scratch);
  if (real_columns == 1) {
    run_decode_tile_with_group<Arch, 1>(problem, job, scratch, partials, real_columns);
  } else {
    run_decode_tile_with_group<Arch, kDecodeColumnGroup>(problem, job, scratch, partials, real_columns);
  }
}

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE
