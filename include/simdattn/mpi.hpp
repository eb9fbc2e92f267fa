// Attention over a sequence whose keys are split across MPI ranks: context-parallel decoding (each
// rank holds a shard of the KV cache) and ring-attention prefill (K/V blocks travel around a ring).
// An optional component: the target simdattn::mpi, built when CMake finds MPI; the core library
// (simdattn::simdattn) has no MPI dependency.
//
// Both functions are collective over `comm`: every rank calls them with the same options and
// shapes (but its own shard), and every rank either returns or throws std::invalid_argument with
// the same message (naming the rank, the argument, the expected and the actual value) before
// anything is written. Positions are the sequence's: causal, window, ALiBi, kv_lengths and
// sink_tokens mean what they would mean in one attention() call over the whole sequence.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <stdexcept>  // std::invalid_argument, which the functions throw

#include "simdattn/attention.hpp"
#include "simdattn/export.hpp"
#include "simdattn/tensor.hpp"

namespace simdattn::mpi {

// Decoding with the cache split across ranks. Every rank passes the same queries q [B, Hq, Sq, D]
// and its own contiguous range of the sequence's keys, k_shard [B, Hkv, n_r, D] and v_shard
// [B, Hkv, n_r, Dv], whose first key is the sequence's key `key_offset`; the shards must tile the
// keys in rank order (key_offset of rank r = n_0 + ... + n_{r-1}); a shard may be empty. Each rank
// computes its partial (out, lse) with attention(), the partials are gathered, and every rank merges
// them in rank order with merge_attention_states: every rank gets the same bits, and the result
// depends on the number of ranks but on nothing else (threads, timing). It lies within the bound of
// a single attention() call's (README, "Guarantees") plus merge_attention_states' rounding.
// out [B, Hq, Sq, Dv] on every rank. Options as attention()'s, over the whole sequence, except:
// kv_lengths (if given) count the whole sequence's keys, at most the total; a mask covers this
// rank's keys only ([.., n_r]); k_scale and v_scale are this shard's; weights and shard are
// rejected. The learned sinks enter once (rank 0's partial carries them). The queries are not
// compared across ranks, only their shapes.
void context_parallel_attention(MPI_Comm comm, AnyConstTensorView q,
                                                 AnyConstTensorView k_shard,
                                                 AnyConstTensorView v_shard, int64_t key_offset,
                                                 AnyTensorView out,
                                                 const AttentionOptions& options = {});

// Which positions a rank of ring_attention owns, for queries and keys alike.
//   contiguous: rank r owns the n_r positions after those of ranks 0..r-1 (shards may differ).
//   zigzag:     the sequence is cut into 2N equal chunks and rank r owns chunks r and 2N-1-r, in
//               that order, so that under a causal mask every rank has the same work. Every
//               shard then holds 2·S/(2N) rows, S divisible by 2N.
enum class RingLayout : int32_t { contiguous = 0, zigzag = 1 };

// Where ring_attention's time went on this rank (seconds): computing, and waiting for K/V blocks
// that had not yet arrived when the computation on the previous one ended (communication that
// compute did not hide).
struct RingTimings {
  double compute_seconds = 0.0;
  double wait_seconds = 0.0;
  double total_seconds = 0.0;
};

struct RingOptions {
  RingLayout layout = RingLayout::contiguous;
  RingTimings* timings = nullptr;  // optional: filled on return
};

// Prefill with queries and keys split across ranks: rank r passes its queries q_shard
// [B, Hq, m_r, D], keys k_shard [B, Hkv, n_r, D] and values v_shard [B, Hkv, n_r, Dv] (positions as
// ring.layout says; with contiguous, queries and keys may be split differently), and receives
// out_shard [B, Hq, m_r, Dv] (and options.lse [B, Hq, m_r, 1]) for its queries. In N steps each
// rank's K/V block travels around the ring with non-blocking sends and receives, overlapped with the
// computation on the block at hand; blocks a rank's queries cannot see (causal, window) are skipped.
// The partials merge in step order: deterministic for a given N, within the bound of a single
// attention() call plus two roundings of merge_attention_states a step. Between chunks of its
// queries a rank polls the transfers (MPI_Testall), so that an MPI without a progress thread
// moves them during the compute. Options as context_parallel's,
// except that a mask is rejected too (it would have to travel with the keys). k_scale and v_scale
// (int8 caches) are this shard's and travel with it.
void ring_attention(MPI_Comm comm, AnyConstTensorView q_shard,
                                     AnyConstTensorView k_shard, AnyConstTensorView v_shard,
                                     AnyTensorView out_shard, const AttentionOptions& options = {},
                                     const RingOptions& ring = {});

}  // namespace simdattn::mpi
