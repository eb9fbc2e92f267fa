// The decoding tile's dot products and P·V for a paged cache's key block taken as several pages
// read side by side (PageRuns). The memory system serves a few streams in different places
// faster than one: a plain read loop over K and V pools of shuffled 8 KiB pages on the 2-core
// Xeon (family 6 model 167) read 16.6-19.2 GB/s one page at a time and 24.9-25.7 four side by
// side, against 26.3-27.0 for contiguous rows (docs/serving-performance.md). These are the
// contiguous kernels (decode_scores, decode_values in decode_tile_impl.hpp) with one key loop
// over pages instead of rows; they stay apart because sharing the loop slowed the contiguous
// int8 and f16 tiles by 3-10% (paired A/B, decode_gqa and decode_b8), by how GCC compiled them.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstdint>

#include <xsimd/xsimd.hpp>

#include "isa/registry.hpp"
#include "kernels/isa_namespace.hpp"
#include "kernels/row_sums.hpp"
#include "kernels/stored_rows.hpp"
#include "kernels/vector_math.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

// Pages read side by side, at most: four were as fast as contiguous rows in the read loop above.
inline constexpr int kMostPageRuns = 4;

// Pages a tile with groups of Group columns reads side by side: each step of the dot products
// takes W / Group keys, the same number from every page, so no more pages than keys a step.
template <class Arch, int Group>
inline constexpr int page_runs() {
  constexpr int keys_per_step = static_cast<int>(xsimd::batch<float, Arch>::size) / Group;
  return keys_per_step < kMostPageRuns ? keys_per_step : kMostPageRuns;
}

// A key block's rows as runs, each a page's part of the block: run s holds the block's rows
// [begin[s], begin[s] + count[s]), and run s + 1 starts where run s ends.
template <class Arch, DType kStored>
struct PageRuns {
  StoredRows<Arch, kStored> rows[kMostPageRuns]{};
  int64_t begin[kMostPageRuns]{};
  int64_t count[kMostPageRuns]{};
  int runs = 0;

  int64_t longest() const {
    int64_t most = 0;
    for (int s = 0; s < runs; ++s) most = std::max(most, count[s]);
    return most;
  }
};

// decode_scores (decode_tile_impl.hpp) over the pages of `keys`: scores[r][c] for the block's
// rows r, each step taking W / Group / runs consecutive keys of every page. A key past its page's
// part (or in a page the block does not have) reads the block's first key, and its sums are
// dropped. Each page's rows a few rows ahead, across its end (prefetch_ahead), and the values of
// the step's keys are prefetched.
template <class Arch, int Group, DType kStored, bool kScaleSums>
inline void decode_scores_of_pages(const float* packed, int64_t head_dim, int64_t head_dim_padded,
                                   int64_t column_groups, const PageRuns<Arch, kStored>& keys,
                                   const PageRuns<Arch, kStored>& values, int64_t value_dim,
                                   float* scores, int64_t padded_columns) {
  using Floats = xsimd::batch<float, Arch>;
  using Keys = StoredRows<Arch, kStored>;
  constexpr int W = static_cast<int>(Floats::size);
  static_assert(W % Group == 0, "a register holds whole groups of sums");
  constexpr int KeysPerStep = W / Group;
  constexpr int kRuns = page_runs<Arch, Group>();
  constexpr int kPerRun = KeysPerStep / kRuns;
  static_assert(kPerRun * kRuns == KeysPerStep, "every page gives a step the same number of keys");
  assert(keys.runs >= 1 && keys.runs <= kRuns && keys.count[0] >= 1);
  constexpr bool kScaleRegisters = Keys::kScaled && !kScaleSums;
  const int64_t full = head_dim - head_dim % W;
  const int64_t span = keys.rows[0].group_span(head_dim);
  const RowSums<Arch> row_sums;
  // As many bytes ahead as for fp32 rows: narrower rows, more of them.
  constexpr int64_t kPrefetchRows = kDecodePrefetchRows * int64_t{sizeof(float)} / int64_t{sizeof(typename Keys::Storage)};
  const int64_t steps = keys.longest();
  for (int64_t i0 = 0; i0 < steps; i0 += kPerRun) {
    int run_of[KeysPerStep];
    int64_t run_row[KeysPerStep];
    bool real[KeysPerStep];
    const typename Keys::Storage* key_rows[KeysPerStep];
    for (int kk = 0; kk < KeysPerStep; ++kk) {
      const int run = kk / kPerRun;
      const int64_t row = i0 + kk % kPerRun;
      real[kk] = run < keys.runs && row < keys.count[run];
      run_of[kk] = real[kk] ? run : 0;
      run_row[kk] = real[kk] ? row : 0;
      key_rows[kk] = keys.rows[run_of[kk]].row(run_row[kk]);
    }
    for (int run = 0; run < keys.runs; ++run) {
      keys.rows[run].prefetch_ahead(i0 + kPrefetchRows, kPerRun, head_dim);
      if (i0 < values.count[run]) {
        values.rows[run].prefetch(i0, std::min<int64_t>(kPerRun, values.count[run] - i0), value_dim);
      }
    }
    // Lane i: the scale of the key whose sum haddp puts there (kScaleSums).
    [[maybe_unused]] Floats sum_scales;
    if constexpr (kScaleSums) {
      alignas(64) float lanes[W];
      for (int i = 0; i < W; ++i) lanes[i] = keys.rows[run_of[i / Group]].row_scales(run_row[i / Group])[0];
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
          for (int kk = 0; kk < KeysPerStep; ++kk) {
            scale[kk] = Floats(keys.rows[run_of[kk]].row_scales(run_row[kk])[scale_column]);
          }
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
          const Keys& run = keys.rows[run_of[i / Group]];
          const int64_t row = run_row[i / Group];
          sums[i] += query * (kScaleSums ? run.unscaled_element(row, d) : run.element(row, d));
        }
      }
      if constexpr (kScaleSums) (Floats::load_aligned(sums) * sum_scales).store_aligned(sums);
      for (int kk = 0; kk < KeysPerStep; ++kk) {
        if (!real[kk]) continue;
        const int64_t key = keys.begin[run_of[kk]] + run_row[kk];
        std::copy(sums + kk * Group, sums + (kk + 1) * Group, scores + key * padded_columns + g * Group);
      }
    }
  }
}

// decode_values_chunk (decode_tile_impl.hpp) over the pages of `runs`: row i of every page, then
// row i + 1, so that the pages stream side by side.
template <class Arch, int Group, int Vectors, DType kStored, bool kScaleWeights>
inline void decode_values_chunk_of_pages(const float* probabilities, int64_t padded_columns,
                                         const PageRuns<Arch, kStored>& runs, int64_t first_column,
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
    for (int v = 0; v < Vectors; ++v) scale_index[v] = (n0 + v * W) / runs.rows[0].scale_group;
  }
  // acc[c] += p[c] · row r of `values`.
  const auto add_row = [&](const Values& values, int64_t r, const float* p) __attribute__((always_inline)) {
    Floats value[Vectors];
    const typename Values::Storage* row = values.row(r);
#pragma GCC unroll 8
    for (int v = 0; v < Vectors; ++v) {
      value[v] = Values::load(row, n0 + v * W);
      if constexpr (kScaleRegisters) value[v] = value[v] * Floats(values.row_scales(r)[scale_index[v]]);
    }
    [[maybe_unused]] Floats row_scale;
    if constexpr (kScaleWeights) row_scale = Floats(values.row_scales(r)[0]);
#pragma GCC unroll 4
    for (int cc = 0; cc < Group; ++cc) {
      Floats weight(p[cc]);
      if constexpr (kScaleWeights) weight = weight * row_scale;
#pragma GCC unroll 8
      for (int v = 0; v < Vectors; ++v) acc[cc][v] = multiply_add<Arch>(weight, value[v], acc[cc][v]);
    }
  };
  const float* first_p = probabilities + first_column;
  const int64_t longest = runs.longest();
  for (int64_t i = 0; i < longest; ++i) {
    for (int run = 0; run < runs.runs; ++run) {
      if (i < runs.count[run]) add_row(runs.rows[run], i, first_p + (runs.begin[run] + i) * padded_columns);
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

// decode_values (decode_tile_impl.hpp) over the pages of `values`.
template <class Arch, int Group, DType kStored, bool kScaleWeights>
inline void decode_values_of_pages(const float* probabilities, int64_t padded_columns, int64_t column_groups,
                                   const PageRuns<Arch, kStored>& values, int64_t value_dim, float* output,
                                   int64_t output_stride) {
  constexpr int64_t W = xsimd::batch<float, Arch>::size;
  for (int64_t g = 0; g < column_groups; ++g) {
    const int64_t first_column = g * Group;
    constexpr int Vectors = blocking_of<Arch>().decode_value_vectors * (Group == 1 ? 2 : 1);
    int64_t n0 = 0;
    for (; n0 + Vectors * W <= value_dim; n0 += Vectors * W) {
      decode_values_chunk_of_pages<Arch, Group, Vectors, kStored, kScaleWeights>(
          probabilities, padded_columns, values, first_column, n0, output, output_stride);
    }
    for (; n0 + W <= value_dim; n0 += W) {
      decode_values_chunk_of_pages<Arch, Group, 1, kStored, kScaleWeights>(
          probabilities, padded_columns, values, first_column, n0, output, output_stride);
    }
    for (int64_t cc = 0; cc < Group; ++cc) {
      float* out = output + (first_column + cc) * output_stride;
      for (int64_t i = 0; i < values.longest(); ++i) {
        for (int run = 0; run < values.runs; ++run) {
          if (i >= values.count[run]) continue;
          const float p = probabilities[(values.begin[run] + i) * padded_columns + first_column + cc];
          for (int64_t n = n0; n < value_dim; ++n) out[n] += p * values.rows[run].element(i, n);
        }
      }
    }
  }
}

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE
