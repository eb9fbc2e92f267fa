#include "plan/run_plan.hpp"

#include <omp.h>

#include <cstring>
#include <limits>

#include "kernels/visible_keys.hpp"
#include "plan/scratch_pool.hpp"

namespace simdattn::detail {

namespace {

// Sk = 0: nothing to attend to. Each batch's own positions (a packed batch's sequence) only.
void write_rows_without_keys(const AttentionPlan& plan) {
  for (int64_t b = 0; b < plan.batch; ++b) {
    const int64_t first = first_query(plan, b), end = first + query_count(plan, b);
    for (int64_t h = 0; h < plan.q_heads; ++h) {
      for (int64_t i = first; i < end; ++i) {
        // +0 has all bits clear in every output dtype.
        std::memset(plan.out.row(b, h, i), 0, static_cast<size_t>(plan.value_dim * dtype_size(plan.out.dtype)));
        // A row with no key: its sink alone (AttentionOptions::sinks), or none.
        if (plan.has_lse) {
          *plan.lse.row(b, h, i) = plan.sinks != nullptr ? plan.sinks[h] : -std::numeric_limits<float>::infinity();
        }
      }
    }
  }
}

}  // namespace

void run_plan(const AttentionPlan& plan, Stage stage) {
  if (stage == Stage::attention && plan.sk == 0) {
    write_rows_without_keys(plan);
    return;
  }
  const bool whole_rows = stage == Stage::attention && plan.composed;
  ScratchPool scratch(plan, plan.threads, whole_rows ? plan.sk : plan.key_block);
  PartialPool partials(plan);
  const int64_t jobs = static_cast<int64_t>(plan.jobs.size());
#pragma omp parallel num_threads(plan.threads)
  {
    TileScratch& mine = scratch.for_thread(omp_get_thread_num());
    // Dynamic: causal and ragged jobs differ in cost; any thread computes a job the same way.
#pragma omp for schedule(dynamic, 1)
    for (int64_t j = 0; j < jobs; ++j) {
      const TileJob& job = plan.jobs[j];
      switch (stage) {
        case Stage::attention:
          if (plan.composed) {
            run_for_isa(plan.isa, ComposedTile{}, plan, job, mine);
          } else {
            run_for_isa(plan.isa, FusedTile{}, plan, job, mine, partials.slots());
          }
          break;
        case Stage::qk_scores: run_for_isa(plan.isa, QkScoresTile{}, plan, job, mine); break;
        case Stage::weights_v: run_for_isa(plan.isa, WeightsVTile{}, plan, job, mine); break;
      }
    }
    // After the loop's barrier every chunk is done; the same threads merge them.
    if (plan.key_chunks > 1) merge_key_chunks(plan, partials.slots());
  }
}

}  // namespace simdattn::detail
