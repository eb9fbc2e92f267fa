// An attention call after validation: the problem in normalised form, plus how it is cut into
// work items. Built by make_attention_plan(); read-only for the kernels.
#pragma once

#include <cstdint>
#include <vector>

#include "dispatch.hpp"
#include "simdattn/attention.hpp"
#include "simdattn/tensor.hpp"

namespace simdattn::detail {

// One unit of parallel work: the query positions [query_begin, query_end) of every query head of
// kv head `kv_head` in batch `batch`, against keys [key_begin, key_end). When keys are split
// (decoding), `partial` indexes the slot its unnormalised result goes to; -1 writes the output.
struct TileJob {
  int64_t batch;
  int64_t kv_head;
  int64_t query_begin, query_end;
  int64_t key_begin, key_end;
  int64_t partial;
};

struct AttentionPlan {
  // --- The problem ---
  // Inputs and the output in their own dtypes (validated: q and out f32, bf16 or f16; k and v
  // one dtype, i8 with k_scale and v_scale). Kernels reach k and v through key_source() and
  // value_source(), q through the query packing, out through the epilogues.
  AnyConstTensorView q, k, v;
  AnyTensorView out;
  ConstTensorView k_scale, v_scale;  // [B, Hkv, Sk, groups] for an i8 cache; data null otherwise
  int64_t batch, q_heads, kv_heads, group, sq, sk, head_dim, value_dim;
  float scale;
  Causal causal;
  int64_t window_left, window_right;
  bool has_mask;
  AnyConstTensorView mask;
  const int64_t* kv_lengths;
  float softcap;
  const float* alibi_slopes;
  bool has_weights;
  TensorView weights;
  bool has_lse;
  TensorView lse;
  ConstTensorView probabilities;  // weights_v()'s input, [B, Hq, Sq, Sk]

  // --- How it runs ---
  Isa isa;
  bool composed;
  int panel_vectors;            // vectors per micro-kernel panel: 1 (decode), 2 or 4
  int64_t queries_per_tile;     // positions per work item; columns = group · positions
  int64_t columns_padded;       // group · queries_per_tile rounded up to the panel width
  int64_t key_block;            // keys per block of the fused loop (composed: all keys)
  int64_t key_chunks;           // > 1: keys split into chunks of kDecodeKeyChunk, merged after
  std::vector<TileJob> jobs;
  int threads;
};

// Throws nothing: the arguments were validated. Chooses composed or fused, the tile shape, the
// key split and the work items, for the ISA of this call.
AttentionPlan make_attention_plan(AnyConstTensorView q, AnyConstTensorView k, AnyConstTensorView v,
                                  AnyTensorView out, const AttentionOptions& options);

// The number of threads a call uses (plan/thread_team.cpp): the request (0 = OpenMP's default),
// never more than the logical CPUs the process may run on nor than there is work; 1 inside an
// enclosing parallel region, so nested calls never oversubscribe, and 1 in a process forked after
// a multi-threaded call, whose inherited OpenMP thread pool would hang.
int threads_for_call(int requested, int64_t work_items);

}  // namespace simdattn::detail
