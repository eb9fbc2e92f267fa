// Attention over the layouts serving engines keep: packed batches of sequences of different
// lengths (flash_attn_varlen_func's cu_seqlens) and paged K/V caches (vLLM's block tables).
// Chunked prefill is a paged (or packed) call whose sequences have more keys than queries;
// decoding is one query a sequence.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>  // std::invalid_argument, which the functions throw

#include "simdattn/attention.hpp"
#include "simdattn/export.hpp"
#include "simdattn/tensor.hpp"

namespace simdattn {

// The view [1, heads, total, dim] of a packed tensor [total, heads, dim] (row-major, as
// flash_attn_varlen_func takes q, k, v and out): what attention_varlen and attention_paged take.
template <class T>
constexpr BasicTensorView<T> packed_view(T* data, int64_t total, int64_t heads, int64_t dim) {
  return {data, {1, heads, total, dim}, {total * heads * dim, dim, heads * dim, 1}};
}

// A paged K/V cache: fixed-size blocks of block_size keys in two pools, and per sequence a row
// of a block table naming its blocks in order. Blocks may be shared between sequences (a common
// prefix) and appear in any order.
struct PagedCache {
  // The pools [num_blocks, Hkv, block_size, D] and [num_blocks, Hkv, block_size, Dv], one dtype
  // (f32, bf16, f16, or i8 with the scales below), the same num_blocks, Hkv and block_size >= 1.
  // [num_blocks, block_size, Hkv, D] in memory is the same view with permuted strides.
  AnyConstTensorView k_pages, v_pages;
  // int8 pools only: scales [num_blocks, Hkv, block_size, D / G] (G as in AttentionOptions::k_scale).
  std::optional<ConstTensorView> k_scale_pages, v_scale_pages;
  // [batch, blocks_per_sequence]: sequence b's key j lies in block block_table[b · blocks_per_sequence
  // + j / block_size], row j % block_size. Entries past a sequence's last block are not read.
  const int32_t* block_table = nullptr;
  int64_t blocks_per_sequence = 0;
  // [batch]: the keys cached for each sequence, its current chunk's own keys included;
  // 0 <= seq_lens[b] <= blocks_per_sequence · block_size.
  const int32_t* seq_lens = nullptr;
};

// A packed batch (flash_attn_varlen_func): sequence b's queries are positions
// [cu_seqlens_q[b], cu_seqlens_q[b + 1]) of q [1, Hq, total_q, D] (see packed_view), and its keys
// rows [cu_seqlens_k[b], cu_seqlens_k[b + 1]) of k [1, Hkv, total_k, D] and v [1, Hkv, total_k, Dv].
// Each cu_seqlens has batch + 1 entries, starts at 0, never decreases and ends at its total; a
// sequence may be empty. out [1, Hq, total_q, Dv] is packed as q is.
//
// Every option of attention() applies to each sequence as if it were called alone, with these
// differences: kv_lengths is rejected (the cu_seqlens say it); the optional lse is
// [1, Hq, total_q, 1]; a mask is [1, Hq or 1, total_q or 1, max_k], max_k the longest sequence's
// keys, read at each sequence's own key indices; weights are not offered (call attention() per
// sequence for them); k_scale and v_scale are [1, Hkv, total_k, groups]. Sequences and heads
// are spread over the threads together, and the result does not depend on the thread count.
// Throws std::invalid_argument (naming the argument, the expected and the actual value) before
// writing anything when an argument is wrong.
SIMDATTN_API void attention_varlen(AnyConstTensorView q, AnyConstTensorView k, AnyConstTensorView v,
                                   AnyTensorView out, const int32_t* cu_seqlens_q,
                                   const int32_t* cu_seqlens_k, int64_t batch,
                                   const AttentionOptions& options = {});

// Packed queries (as attention_varlen) over a paged cache: sequence b's queries attend to its
// seq_lens[b] cached keys, its own chunk being the last of them under the bottom-right causal
// alignment (chunked prefill; decoding is one query a sequence). Options as attention_varlen,
// except that k_scale and v_scale come from the cache and are rejected in the options.
SIMDATTN_API void attention_paged(AnyConstTensorView q, const PagedCache& cache, AnyTensorView out,
                                  const int32_t* cu_seqlens_q, int64_t batch,
                                  const AttentionOptions& options = {});

}  // namespace simdattn
