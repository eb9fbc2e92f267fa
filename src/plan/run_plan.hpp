// The parallel loop: one OpenMP loop over a plan's work items, each run by the kernel of the
// plan's ISA with its thread's scratch, then (decoding) the fixed-order merge of key chunks.
#pragma once

#include "kernels/tile_kernels.hpp"
#include "plan/attention_plan.hpp"

namespace simdattn::detail {

enum class Stage { attention, qk_scores, weights_v };

// Runs every job of `plan` for `stage`. Allocates all scratch before the first write; throws
// std::bad_alloc (nothing written) when that fails. Attention with no key at all (Sk = 0) runs
// no kernel: every row is zeros, and its lse the head's sink logit or -inf.
void run_plan(const AttentionPlan& plan, Stage stage);

// Combines the key chunks of each (batch, kv head) of a decoding plan by their log-sum-exp, in
// chunk order whatever the thread count, and writes out and lse. Called by every thread of the
// plan's parallel region (its loop is an orphaned `omp for`).
void merge_key_chunks(const AttentionPlan& plan, const PartialSlots& partials);

}  // namespace simdattn::detail
