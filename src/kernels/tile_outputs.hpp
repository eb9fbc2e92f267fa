// How a tile leaves: its outputs normalised by the softmax sums (and the log-sum-exp), or, for a
// key chunk of a decoding plan, its unnormalised state in the chunk's partial slot.
#pragma once

#include <algorithm>
#include <cstdint>

#include <xsimd/xsimd.hpp>

#include "kernels/element_convert_impl.hpp"
#include "kernels/isa_namespace.hpp"
#include "kernels/tile_kernels.hpp"
#include "kernels/tile_problem.hpp"
#include "kernels/transpose.hpp"
#include "kernels/value_accumulation.hpp"

namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE {

// Seeds the online softmax of each real column with its head's sink logit: max = sink (base 2),
// sum = 1 = 2^(sink - sink), nothing accumulated. The recurrence then counts the sink as one more
// key with no value, the softmax's extra denominator term. A key chunk (job.partial >= 0) leaves
// it out: merge_key_chunks adds it once per row. A -inf sink seeds nothing (no sink).
inline void seed_sink_logits(const TileProblem& problem, const TileJob& job,
                             const TileScratch& scratch, int64_t real_columns) {
  if (problem.sinks == nullptr || job.partial >= 0) return;
  for (int64_t c = 0; c < real_columns; ++c) {
    const float sink = problem.sinks[scratch.columns[c].head];
    if (sink == kMinusInfinity) continue;
    scratch.running_max[c] = sink * kLog2e;
    scratch.running_sum[c] = 1.0f;
  }
}

// out = accumulator / sum for each real column, and lse = max + log(sum). A column that saw no
// key (sum 0) gets zeros and lse -inf; a NaN sum stays NaN in both. An Oᵀ accumulator (column
// stride 1) leaves through W × W transposes in registers; the rest element by element.
template <class Arch>
inline void write_normalized_outputs(const TileProblem& problem, const TileJob& job,
                                     const TileScratch& scratch, int64_t real_columns,
                                     AccumulatorLayout layout) {
  using Floats = xsimd::batch<float, Arch>;
  constexpr int64_t W = Floats::size;
  // Column c's output row: the caller's (f32), or a float row rounded into it at the end.
  const bool rounded = problem.out.dtype != DType::f32;
  const int64_t rounded_stride = (problem.value_dim + 15) / 16 * 16;
  const auto output_row = [&](int64_t c) {
    const ColumnInfo& column = scratch.columns[c];
    return rounded ? scratch.output_rows + c * rounded_stride
                   : static_cast<float*>(problem.out.row(job.batch, column.head, column.position));
  };
  const int64_t transposed_values = layout.column_stride == 1 ? problem.value_dim - problem.value_dim % W : 0;
  for (int64_t c0 = 0; c0 < real_columns && transposed_values > 0; c0 += W) {
    const int64_t count = std::min(W, real_columns - c0);
    // The block's columns that saw a key, their output rows and 1 / sum.
    float* outs[W] = {};
    float inverses[W];
    for (int64_t i = 0; i < count; ++i) {
      const float sum = scratch.running_sum[c0 + i];
      if (sum > 0.0f) outs[i] = output_row(c0 + i);
      // Only a positive sum is divided by: 1 / 0 would raise FE_DIVBYZERO.
      inverses[i] = sum > 0.0f ? 1.0f / sum : 0.0f;
    }
    for (int64_t n0 = 0; n0 < transposed_values; n0 += W) {
      Floats block[W];
      for (int64_t j = 0; j < W; ++j) {
        block[j] = Floats::load_aligned(scratch.accumulator + (n0 + j) * layout.value_stride + c0);
      }
      transpose_in_registers<Arch>(block);
      for (int64_t i = 0; i < count; ++i) {
        if (outs[i] != nullptr) (block[i] * Floats(inverses[i])).store_unaligned(outs[i] + n0);
      }
    }
  }
  for (int64_t c = 0; c < real_columns; ++c) {
    const ColumnInfo& column = scratch.columns[c];
    const float sum = scratch.running_sum[c];
    float* out = output_row(c);
    if (sum > 0.0f) {
      const float inverse = 1.0f / sum;
      for (int64_t n = transposed_values; n < problem.value_dim; ++n) {
        out[n] = layout.at(scratch.accumulator, n, c) * inverse;
      }
    } else {
      std::fill(out, out + problem.value_dim, sum == 0.0f ? 0.0f : sum);
    }
    if (problem.has_lse) {
      *problem.lse.row(job.batch, column.head, column.position) =
          natural_log_sum_exp(scratch.running_max[c], sum);
    }
    if (rounded) {
      narrow_row<Arch>(out, problem.value_dim, problem.out.row(job.batch, column.head, column.position),
                       problem.out.dtype);
    }
  }
}

// Writes the outputs of the real columns or, for a key chunk, stores the unnormalised state in
// its partial slot (laid out [value][column], columns_padded wide).
// The decoding invariant merge_key_chunks (plan/merge_key_chunks.cpp) relies on: job.partial is
// the job's index in the plan, and the key chunks of one (batch b, kv head h) are consecutive
// jobs in chunk order (AttentionPlan::chunk_runs), so the merge finds them at consecutive slots.
// make_attention_plan creates the jobs so and never reorders decoding jobs.
template <class Arch>
inline void finish_online_tile(const TileProblem& problem, const TileJob& job,
                               const TileScratch& scratch, const PartialSlots& partials,
                               int64_t real_columns, AccumulatorLayout layout) {
  if (job.partial < 0) {
    write_normalized_outputs<Arch>(problem, job, scratch, real_columns, layout);
    return;
  }
  const int64_t slot_columns = problem.columns_padded;
  float* accumulator = partials.accumulator + job.partial * problem.value_dim * slot_columns;
  for (int64_t n = 0; n < problem.value_dim; ++n) {
    for (int64_t c = 0; c < real_columns; ++c) {
      accumulator[n * slot_columns + c] = layout.at(scratch.accumulator, n, c);
    }
  }
  std::copy(scratch.running_max, scratch.running_max + real_columns,
            partials.max + job.partial * slot_columns);
  std::copy(scratch.running_sum, scratch.running_sum + real_columns,
            partials.sum + job.partial * slot_columns);
}

}  // namespace simdattn::detail::SIMDATTN_ISA_NAMESPACE
