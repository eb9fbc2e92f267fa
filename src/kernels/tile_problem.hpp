// What the tile kernels read of a call: the problem in normal form (views, dtypes, options as
// plain values) and the tile shape the plan chose. AttentionPlan (plan/attention_plan.hpp) is a
// TileProblem plus the ISA, the work items and the thread count; kernels never see the rest, and
// nothing under src/kernels/ includes src/plan/. No SIMD code: generic code includes it.
#pragma once

#include <cstdint>

#include "simdattn/attention.hpp"
#include "simdattn/tensor.hpp"

namespace simdattn::detail {

// One unit of parallel work: the query positions [query_begin, query_end) of every query head of
// kv head `kv_head` in batch `batch`, against keys [key_begin, key_end). When keys are split
// (decoding), `partial` indexes the slot its unnormalised result goes to; -1 writes the output.
// The plan numbers the slots so that a slot is its job's index (see make_attention_plan).
struct TileJob {
  int64_t batch;
  int64_t kv_head;
  int64_t query_begin, query_end;
  int64_t key_begin, key_end;
  int64_t partial;
};

struct TileProblem {
  // --- The tensors, in their own dtypes (validated by the entry) ---
  // q: the queries of attention() and qk_scores() (f32, bf16 or f16); empty (head_dim 0) for
  // weights_v(). k and v one dtype, i8 with k_scale and v_scale; the kernels reach them through
  // key_source() and value_source(). k is empty for weights_v(), v for qk_scores().
  AnyConstTensorView q, k, v;
  // The output of attention() and weights_v() (f32, bf16 or f16); empty for qk_scores().
  AnyTensorView out;
  ConstTensorView k_scale, v_scale;  // [B, Hkv, Sk, groups] for an i8 cache; data null otherwise
  // Each role its own tensor, null data unless its call has it:
  TensorView weights;             // attention()'s optional softmax weights, [B, Hq, Sq, Sk]
  TensorView lse;                 // attention()'s optional log-sum-exp, [B, Hq, Sq, 1]
  TensorView scores;              // qk_scores()'s output, [B, Hq, Sq, Sk]
  ConstTensorView probabilities;  // weights_v()'s input, [B, Hq, Sq, Sk]
  bool has_weights, has_lse;

  // --- Sizes; head_dim is 0 when there are no logits to compute (weights_v) ---
  int64_t batch, q_heads, kv_heads, group, sq, sk, head_dim, value_dim;

  // --- The options in normal form ---
  float scale;  // the logits' scale, not yet in base 2 (base2_logit_scale)
  Causal causal;
  int64_t window_left, window_right;  // -1: unbounded; else at most Sq + Sk
  bool has_mask;
  AnyConstTensorView mask;
  const int64_t* kv_lengths;  // null: every batch has Sk keys
  float softcap;              // <= 0: off
  const float* alibi_slopes;  // null: off
  const float* sinks;         // one sink logit per query head (natural log); null: off
  int64_t sink_tokens;        // keys (rows of k) exempt from window_left; 0 unless window_left >= 0
  // A shard of a longer sequence (AttentionOptions::shard; 0 and 0 otherwise): row j of k is the
  // sequence's key key_offset + j, kv_lengths count the sequence's keys, and every diagonal moves
  // by diagonal_shift. visible_keys.hpp turns both into this call's rows.
  int64_t key_offset, diagonal_shift;

  // --- Packed and paged batches (attention_varlen, attention_paged); null for attention() ---
  // Batch b's queries are positions [query_starts[b], query_starts[b + 1]) of q, out and lse (whose
  // batch stride is then 0); null: positions [0, Sq) of every batch.
  const int64_t* query_starts;
  // Packed keys: batch b's key j is row key_starts[b] + j of k and v (and their scales).
  const int64_t* key_starts;
  // Paged keys: k, v (and their scales) are pools [num_blocks, Hkv, page_rows, D]; batch b's key j
  // is row j % page_rows of block block_table[b · table_stride + j / page_rows].
  const int32_t* block_table;
  int64_t table_stride;
  int64_t page_rows;

  // --- The tile shape ---
  int panel_vectors;         // vectors per micro-kernel panel: 1 (decode), 2 or 4
  int64_t queries_per_tile;  // positions per work item; columns = group · positions
  int64_t columns_padded;    // group · queries_per_tile rounded up to the panel width
  int64_t key_block;         // keys per block of the fused loop (composed: all keys)
  int64_t key_chunks;        // > 1: keys split into chunks (decode_key_chunk; the most any batch has), merged after
};

}  // namespace simdattn::detail
