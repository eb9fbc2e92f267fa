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

// Where the sequences of a packed or paged batch lie (attention_varlen, attention_paged), as the
// plan keeps them; the TileProblem's query_starts, key_starts and kv_lengths point into it.
struct SequenceTable {
  std::vector<int64_t> query_starts;  // [B + 1]; empty: not a packed batch
  std::vector<int64_t> key_starts;    // [B] when the keys are packed; empty when paged
  std::vector<int64_t> key_lengths;   // [B]
  const int32_t* block_table = nullptr;  // paged: [B, table_stride]
  int64_t table_stride = 0;
  int64_t page_rows = 0;
};

// The problem and tile shape the kernels read (TileProblem), plus how the call runs: the ISA,
// the algorithm, the work items and the team size.
struct AttentionPlan : TileProblem {
  Isa isa;
  bool composed;
  // In creation order, except that causal, non-decoding jobs are sorted largest first. Decoding
  // jobs are never reordered: job j's partial slot is j, and the key chunks of one (batch, kv head)
  // are consecutive jobs in key order, the slots merge_key_chunks reads.
  std::vector<TileJob> jobs;
  // Keys split (key_chunks > 1): run g of key chunks is jobs [chunk_runs[g], chunk_runs[g + 1]),
  // as many chunks as its batch's keys need (1 for a short sequence); empty otherwise.
  std::vector<int64_t> chunk_runs;
  int threads;
  // A packed or paged batch's sequences (the TileProblem points into them: moving a plan keeps
  // them valid, copying one would not, so plans are moved only).
  SequenceTable sequences;

  AttentionPlan() = default;
  AttentionPlan(AttentionPlan&&) = default;
  AttentionPlan& operator=(AttentionPlan&&) = default;
  AttentionPlan(const AttentionPlan&) = delete;
  AttentionPlan& operator=(const AttentionPlan&) = delete;
};

// For the calling thread only, makes every plan take `key_block` keys per block of the fused loop
// while the object lives. The plan sizes blocks apart for fp32 and for K and V it widens
// (BlockingSizes::widened_key_block); the tests use this to run the fp32 call on a 16-bit call's
// widened inputs with that call's blocks, so that the two must give the same bits.
class ScopedKeyBlockOverride {
 public:
  explicit ScopedKeyBlockOverride(int64_t key_block);
  ~ScopedKeyBlockOverride();
  ScopedKeyBlockOverride(const ScopedKeyBlockOverride&) = delete;
  ScopedKeyBlockOverride& operator=(const ScopedKeyBlockOverride&) = delete;

 private:
  int64_t previous_;
};

// Throws nothing: the arguments were validated. Chooses composed or fused, the tile shape, the
// key split and the work items, for the ISA of this call.
AttentionPlan make_attention_plan(AnyConstTensorView q, AnyConstTensorView k, AnyConstTensorView v,
                                  AnyTensorView out, const AttentionOptions& options);

// The plan of a packed or paged batch: q and out (and lse, mask) are views [B, H, total_q, D]
// whose batch stride is 0 (every sequence's positions, addressed absolutely); k and v are the
// packed keys [B, Hkv, max_k, D] with batch stride 0, or the pools [num_blocks, Hkv, page, D];
// max_k = the longest sequence's keys is the plan's Sk.
AttentionPlan make_batch_plan(AnyConstTensorView q, AnyConstTensorView k, AnyConstTensorView v,
                              AnyTensorView out, const AttentionOptions& options,
                              SequenceTable sequences, int64_t max_keys);

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
