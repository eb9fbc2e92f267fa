// attention(): softmax(scale · Q·Kᵀ + masks) · V over strided views, with the options real models use.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>  // std::invalid_argument, which attention() throws

#include "simdattn/export.hpp"
#include "simdattn/tensor.hpp"

namespace simdattn {

// Which keys a query sees, by position. The causal mask, the sliding window and ALiBi all measure
// from one diagonal, key i + off for query i, where off = 0 under top_left, and
// off = Sk - Sq (or kv_lengths[b] - Sq) under bottom_right and none:
//   bottom_right: query i sees key j iff j <= i + off  (KV-cache convention, FlashAttention >= 2.1)
//   top_left:     query i sees key j iff j <= i        (PyTorch's is_causal when Sq != Sk)
enum class Causal : int32_t { none = 0, bottom_right = 1, top_left = 2 };

// composed: materialise a block of scores, softmax it, multiply by V (needed for weights output).
// fused: online softmax over key tiles, memory independent of Sk. automatic picks per call.
enum class Algorithm : int32_t { automatic = 0, composed = 1, fused = 2 };

// Where a call's keys and queries sit in a longer sequence whose keys are split across calls or
// machines (simdattn/mpi.hpp splits them so): key row j of k and v is the sequence's key
// key_offset + j, and query row i's diagonal (see Causal) is i + off + diagonal_shift with off
// measured over the sequence: 0 under top_left, otherwise kv_lengths[b] (or key_offset + Sk) - Sq.
// Causal, the window, ALiBi, sink_tokens and kv_lengths then all count sequence positions: row j
// exists iff key_offset + j < kv_lengths[b], which may exceed key_offset + Sk (the sequence goes on
// in another shard). A shard of the queries, rows [q0, q0 + Sq) of Sq_total, passes
// diagonal_shift = q0 under top_left and q0 + Sq - Sq_total otherwise. key_offset, diagonal_shift
// and kv_lengths lie within ±2^40, so that no position arithmetic can overflow.
struct KeyShard {
  int64_t key_offset = 0;
  int64_t diagonal_shift = 0;
};

struct AttentionOptions {
  // Multiplies Q·Kᵀ; unset means 1/sqrt(head_dim).
  std::optional<float> scale;
  Causal causal = Causal::none;
  // Sliding window, aligned like causal: key j is visible iff i+off-left <= j <= i+off+right,
  // where off (see Causal) is 0 for Causal::top_left and Sk - Sq (or kv_lengths[b] - Sq) otherwise.
  // -1 leaves that side unbounded.
  int64_t window_left = -1;
  int64_t window_right = -1;
  // Additive mask [B or 1, Hq or 1, Sq or 1, Sk] in f32, bf16 or f16; a size-1 dimension
  // broadcasts, zero strides are accepted; -inf excludes a key.
  std::optional<AnyConstTensorView> mask;
  // One entry per batch: keys j >= kv_lengths[b] do not exist for batch b. nullptr: all Sk keys.
  const int64_t* kv_lengths = nullptr;
  // logit = softcap · tanh(logit / softcap), applied to the scaled logits before any mask. 0: off.
  float softcap = 0.0f;
  // One slope per query head: adds -slope · |i + off - j| to the logits, with the same off as the
  // window (see Causal): 0 for Causal::top_left, Sk - Sq (or kv_lengths[b] - Sq) otherwise, so a
  // query's own diagonal key gets no bias under either alignment. nullptr: off.
  const float* alibi_slopes = nullptr;
  // Attention sinks as in gpt-oss: one learned logit per query head (natural log, added as is, not
  // scaled), an extra term in every row's softmax denominator that carries no value:
  //   weight_j = exp(s_j - m) / (Σ_k exp(s_k - m) + exp(sinks[h] - m)),  m = max(max_k s_k, sinks[h]),
  // so a row's weights sum to less than 1, and lse includes it (log(Σ_k exp(s_k) + exp(sinks[h]))).
  // A row that sees no key gets zeros and lse = sinks[h]. -inf means no sink for that head (the
  // same bits as without this option); NaN and +inf are rejected. nullptr: off.
  const float* sinks = nullptr;
  // StreamingLLM sink tokens: keys j < sink_tokens are exempt from window_left (a query sees them
  // however far back they lie); causal, window_right, kv_lengths and the mask still apply. 0: off.
  int64_t sink_tokens = 0;
  // Optional outputs: the softmax weights [B, Hq, Sq, Sk] and the per-row log-sum-exp of the
  // scaled, biased logits [B, Hq, Sq, 1] (natural log; -inf for a row with no visible key).
  std::optional<TensorView> weights;
  std::optional<TensorView> lse;
  // 0: OpenMP's default. The team never exceeds the logical CPUs the process may use
  // (omp_get_num_procs(): the calling thread's affinity mask), so any request is safe. The call
  // runs on its own thread alone inside an enclosing parallel region, and in a process forked
  // from one that was running threads (libgomp's pool does not survive fork()).
  int num_threads = 0;
  Algorithm algorithm = Algorithm::automatic;
  // The scales of an int8 k or v (required then, rejected otherwise): element d of row (b, h, j)
  // means scale[b, h, j, d / G] · k[b, h, j, d]. Shape [B, Hkv, Sk, D / G]: [B, Hkv, Sk, 1] is
  // one scale per row, [B, Hkv, Sk, D / 32] ggml's q8_0 blocks. G must divide D (Dv for
  // v_scale); every scale finite and >= 0. quantize_rows() (convert.hpp) makes them.
  std::optional<ConstTensorView> k_scale;
  std::optional<ConstTensorView> v_scale;
  // This call's keys (and queries) as a shard of a longer sequence (see KeyShard); absent: the
  // call holds the whole sequence. attention() only: attention_varlen and attention_paged reject it.
  std::optional<KeyShard> shard;
};

// out[b,h,i,:] = Σ_j softmax_j(scale · q[b,h,i,:]·k[b,h',j,:] + bias)[j] · v[b,h',j,:], where
// h' = h / (Hq / Hkv) (multi-head, grouped-query and multi-query attention alike).
// q [B, Hq, Sq, D], k [B, Hkv, Sk, D], v [B, Hkv, Sk, Dv], out [B, Hq, Sq, Dv]; Hq % Hkv == 0.
// Dtypes: q and out each f32, bf16 or f16; k and v one dtype, f32, bf16, f16 or i8 (with
// k_scale and v_scale). Inputs are widened exactly to fp32, everything accumulates in fp32 (README,
// "Guarantees", bounds the error), and a 16-bit out is rounded to nearest even once at the end.
// A query row with no visible key gets zeros; a row with a +inf or NaN logit gets NaN (as
// torch.softmax does). Finite inputs raise no FE_INVALID, FE_DIVBYZERO or FE_OVERFLOW (README,
// "Floating-point environment"). Throws std::invalid_argument (naming the argument,
// the expected and the actual value) before writing anything when an argument is wrong.
SIMDATTN_API void attention(AnyConstTensorView q, AnyConstTensorView k, AnyConstTensorView v,
                            AnyTensorView out, const AttentionOptions& options = {});

}  // namespace simdattn
