// A call after validation: the problem in normalised form, plus how it is cut into work items.
// Built by make_attention_plan() (or the stages' make_*_plan()); kernels see only its TileProblem.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "dispatch.hpp"
#include "kernels/tile_problem.hpp"
#include "simdattn/attention.hpp"
#include "simdattn/tensor.hpp"

namespace simdattn::detail {

// The problem and tile shape the kernels read (TileProblem), plus how the call runs: the ISA,
// the algorithm, the work items and the team size.
struct AttentionPlan : TileProblem {
  Isa isa;
  bool composed;
  // In creation order, except that causal, non-decoding jobs are sorted largest first. Decoding
  // jobs are never reordered: job j's partial slot is j, and for (batch b, kv head h) =
  // group g = b · kv_heads + h, key chunk `chunk` is job g · key_chunks + chunk, the slot
  // merge_key_chunks reads.
  std::vector<TileJob> jobs;
  int threads;
};

// Throws nothing: the arguments were validated. Chooses composed or fused, the tile shape, the
// key split and the work items, for the ISA of this call.
AttentionPlan make_attention_plan(AnyConstTensorView q, AnyConstTensorView k, AnyConstTensorView v,
                                  AnyTensorView out, const AttentionOptions& options);

// The plans of the stages, each tensor in its own role: qk_scores() has no v and no out (its
// output is `scores`), weights_v() no q and no k (its rows come from `probabilities`, head_dim 0).
// No options but the cache's scales; composed, so keys are never split.
AttentionPlan make_qk_scores_plan(AnyConstTensorView q, AnyConstTensorView k, TensorView scores,
                                  float scale, int num_threads,
                                  std::optional<ConstTensorView> k_scale);
AttentionPlan make_weights_v_plan(ConstTensorView weights, AnyConstTensorView v, AnyTensorView out,
                                  int num_threads, std::optional<ConstTensorView> v_scale);

// The number of threads a call uses (plan/thread_team.cpp): the request (0 = OpenMP's default),
// never more than the logical CPUs the process may run on nor than there is work; 1 inside an
// enclosing parallel region, so nested calls never oversubscribe, and 1 in a process forked after
// a multi-threaded call, whose inherited OpenMP thread pool would hang.
int threads_for_call(int requested, int64_t work_items);

}  // namespace simdattn::detail
