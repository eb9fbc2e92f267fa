// Decoding splits the keys of each (batch, kv head) into chunks processed in parallel; this merges
// their unnormalised results: with M = max_c m_c, L = Σ_c l_c·2^(m_c - M) (the maxima are base 2,
// kLog2e), out = Σ_c acc_c·2^(m_c - M) / L and lse = M·ln 2 + log L, always summing chunks in
// increasing order. A sink logit s (AttentionOptions::sinks) joins M and adds 2^(s - M) to L once.
#include <algorithm>
#include <cmath>
#include <limits>

#include <omp.h>

#include "kernels/scalar_convert.hpp"
#include "plan/run_plan.hpp"

namespace simdattn::detail {

// Relies on the plan's decoding invariant (make_attention_plan): the jobs come in runs, one per
// (batch, kv head) with queries, run g being jobs [chunk_runs[g], chunk_runs[g + 1]) (its batch's
// key chunks in order, at most key_chunks), and each job left its partial result in the slot of
// its index.
void merge_key_chunks(const AttentionPlan& plan, const PartialSlots& partials) {
  const int64_t slot_columns = plan.columns_padded;
  const int64_t groups = static_cast<int64_t>(plan.chunk_runs.size()) - 1;
  const float minus_infinity = -std::numeric_limits<float>::infinity();
  float* chunk_weight = partials.chunk_weights + plan.key_chunks * omp_get_thread_num();
#pragma omp for schedule(static)
  for (int64_t group = 0; group < groups; ++group) {
    const int64_t first_slot = plan.chunk_runs[group];
    const int64_t chunks = plan.chunk_runs[group + 1] - first_slot;
    const TileJob& run = plan.jobs[static_cast<size_t>(first_slot)];
    const int64_t b = run.batch, kv_head = run.kv_head;
    // Columns as describe_columns numbers them: head-major, the run's positions within.
    const int64_t positions = run.query_end - run.query_begin;
    const int64_t columns = plan.group * positions;
    for (int64_t c = 0; c < columns; ++c) {
      const int64_t head = kv_head * plan.group + c / positions, position = run.query_begin + c % positions;
      // The head's sink logit (base 2) is one more term of the denominator, counted here once.
      const float sink = plan.sinks != nullptr ? plan.sinks[head] * kLog2e : minus_infinity;
      float max = sink;
      for (int64_t chunk = 0; chunk < chunks; ++chunk) {
        max = std::max(max, partials.max[(first_slot + chunk) * slot_columns + c]);
      }
      // 0 when nothing was seen: every chunk then has weight 2^(-inf - 0) = 0.
      const float shift = max == minus_infinity ? 0.0f : max;
      float sum = 0.0f;
      for (int64_t chunk = 0; chunk < chunks; ++chunk) {
        const int64_t slot = (first_slot + chunk) * slot_columns + c;
        const float chunk_max = partials.max[slot];
        chunk_weight[chunk] = chunk_max == shift ? 1.0f : std::exp2(chunk_max - shift);
        sum += partials.sum[slot] * chunk_weight[chunk];
      }
      if (sink != minus_infinity) sum += std::exp2(sink - shift);
      // A rounded output is computed in a float row (this thread's, value_dim floats) first.
      void* destination = plan.out.row(b, head, position);
      float* out = plan.out.dtype == DType::f32 ? static_cast<float*>(destination)
                                                 : partials.output_rows + (plan.value_dim + 15) / 16 * 16 * omp_get_thread_num();
      for (int64_t n = 0; n < plan.value_dim; ++n) {
        float value = 0.0f;
        for (int64_t chunk = 0; chunk < chunks; ++chunk) {
          const int64_t slot = first_slot + chunk;
          value += partials.accumulator[(slot * plan.value_dim + n) * slot_columns + c] * chunk_weight[chunk];
        }
        out[n] = sum > 0.0f ? value / sum : (sum == 0.0f ? 0.0f : sum);
      }
      if (plan.out.dtype != DType::f32) narrow_row_scalar(out, plan.value_dim, destination, plan.out.dtype);
      if (plan.has_lse) {
        *plan.lse.row(b, head, position) = natural_log_sum_exp(max, sum);
      }
    }
  }
}

}  // namespace simdattn::detail
