/* simdattn.h: the C ABI of simdattn, a thin layer over the C++ API (simdattn.hpp) for C, Rust,
 * Python (ctypes, cffi) and any other language with a C FFI.
 *
 * Conventions:
 * - Every function that can fail returns a simdattn_status. On failure nothing has been written to
 *   any output, and simdattn_last_error() holds a message naming the function, the argument, the
 *   expected and the actual value. No C++ exception, abort or out-of-bounds write crosses this ABI.
 * - simdattn_last_error() is per thread and keeps the message of the calling thread's most recent
 *   FAILED call: a successful call does not clear it, so read it only after a non-OK status. It is
 *   "" until the thread's first failure. The pointer stays valid until that thread's next failure.
 * - Tensors are strided views [batch, heads, seq, head_dim] of the caller's memory; strides are in
 *   elements, strides[3] must be 1. The library never keeps a pointer after a call returns.
 * - The semantics of every function and option are those of the C++ functions of the same name.
 * - Finite inputs raise no FE_INVALID, FE_DIVBYZERO or FE_OVERFLOW; the library never changes the
 *   floating-point environment. A fork()ed child of a threaded process runs calls on one thread.
 * - Needs C99 or later (the shared export macro header uses // comments); C++ may include it too.
 */
#ifndef SIMDATTN_SIMDATTN_H
#define SIMDATTN_SIMDATTN_H

#include <stddef.h>
#include <stdint.h>

/* SIMDATTN_API: the export macro, shared with the C++ headers (plain preprocessor, valid C). */
#include "simdattn/export.hpp"
/* SIMDATTN_VERSION_MAJOR, _MINOR, _PATCH and SIMDATTN_VERSION: these headers' version. */
#include "simdattn/version.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  SIMDATTN_OK = 0,
  SIMDATTN_ERR_INVALID_ARGUMENT = 1, /* a shape, stride, pointer or option is wrong */
  SIMDATTN_ERR_UNSUPPORTED = 2,      /* valid request this build cannot serve (e.g. options set
                                        in a newer simdattn_options than this library knows) */
  SIMDATTN_ERR_OUT_OF_MEMORY = 3,    /* scratch memory could not be allocated */
  SIMDATTN_ERR_INTERNAL = 4          /* a bug: please report it with the message */
} simdattn_status;

/* Element types (simdattn::DType). bf16 and f16 hold uint16_t bits; I8 means scale * int8 with
 * fp32 scales given beside it (options->k_scale, v_scale). q and out: F32, BF16 or F16; k and v:
 * one dtype, any of the four; the mask F32, BF16 or F16; weights, lse, scales and the stages'
 * scores F32. Everything is computed in fp32; a 16-bit out is rounded to nearest even. */
typedef enum {
  SIMDATTN_F32 = 0,
  SIMDATTN_BF16 = 1,
  SIMDATTN_F16 = 2,
  SIMDATTN_I8 = 3
} simdattn_dtype;

/* Which keys a query sees. The causal mask, the window and ALiBi measure from one diagonal, key
 * i + off for query i: off = 0 under TOP_LEFT, Sk - Sq (or kv_lengths[b] - Sq) otherwise.
 * BOTTOM_RIGHT: query i sees key j iff j <= i + off (KV-cache convention, FlashAttention >= 2.1).
 * TOP_LEFT:     query i sees key j iff j <= i (PyTorch's is_causal when Sq != Sk). */
typedef enum {
  SIMDATTN_CAUSAL_NONE = 0,
  SIMDATTN_CAUSAL_BOTTOM_RIGHT = 1,
  SIMDATTN_CAUSAL_TOP_LEFT = 2
} simdattn_causal;

/* COMPOSED materialises a block of scores (required for the weights output); FUSED uses the
 * online softmax, memory independent of Sk; AUTO picks per call. */
typedef enum {
  SIMDATTN_ALGO_AUTO = 0,
  SIMDATTN_ALGO_COMPOSED = 1,
  SIMDATTN_ALGO_FUSED = 2
} simdattn_algo;

typedef struct simdattn_tensor { /* [batch, heads, seq, head_dim]; strides in elements */
  void *data;                    /* float *, or uint16_t * (BF16, F16), or int8_t * (I8) */
  int32_t dtype;                 /* simdattn_dtype */
  int64_t shape[4];
  int64_t strides[4];            /* strides[3] must be 1 */
} simdattn_tensor;

/* Fill with simdattn_options_init() and then set what you need. struct_size lets the struct grow:
 * a library given a smaller struct_size (an older caller) reads only the fields that fit in it and
 * defaults the rest; given a larger one (a newer caller), it accepts it only when every byte beyond
 * the fields it knows is zero, and otherwise returns SIMDATTN_ERR_UNSUPPORTED. A struct_size that
 * does not even hold `scale` is SIMDATTN_ERR_INVALID_ARGUMENT. */
typedef struct simdattn_options {
  size_t struct_size;                /* sizeof(simdattn_options); lets the struct grow compatibly */
  float scale;                       /* 0: 1/sqrt(head_dim), unless scale_is_explicit is set */
  int32_t causal;                    /* simdattn_causal */
  int64_t window_left, window_right; /* -1: unbounded; aligned like causal */
  const simdattn_tensor *mask;       /* optional additive mask [B|1, Hq|1, Sq|1, Sk]; size 1 broadcasts */
  const int64_t *kv_lengths;         /* optional, one per batch */
  float softcap;                     /* 0: off; logit = softcap * tanh(logit / softcap) */
  const float *alibi_slopes;         /* optional, one per query head: -slope * |i + off - j| */
  const simdattn_tensor *weights;    /* optional output [B, Hq, Sq, Sk] */
  const simdattn_tensor *lse;        /* optional output [B, Hq, Sq, 1] (natural log) */
  int32_t num_threads;               /* 0: OpenMP's default; capped at the logical CPUs usable,
                                        1 in a child forked from a threaded process */
  int32_t algorithm;                 /* simdattn_algo */
  /* Nonzero: `scale` is used as given, 0 included (C's only way to ask for scale 0, which makes
   * every visible key weigh the same). 0, the default and what an older caller's shorter struct
   * implies: scale 0 means 1/sqrt(head_dim). */
  int32_t scale_is_explicit;
  /* The fp32 scales of an I8 k or v (required then, NULL otherwise): [B, Hkv, Sk, G] where G, the
   * scales per row, divides head_dim (value_dim for v_scale): element d of row j means
   * scale[.., j, d / (head_dim / G)] * int8. G = 1: one scale per row; head_dim / 32: q8_0 blocks. */
  const simdattn_tensor *k_scale;
  const simdattn_tensor *v_scale;
  /* Attention sinks (gpt-oss): optional, one logit per query head, an extra softmax-denominator
   * term with no value; lse includes it, a row seeing no key gets zeros and lse = sink. -inf: no
   * sink for that head; NaN and +inf are rejected. An older caller's shorter struct leaves it NULL. */
  const float *sinks;
  /* StreamingLLM sink tokens: keys j < sink_tokens stay visible whatever window_left says (still
   * subject to causal, window_right, kv_lengths and the mask). 0: off. */
  int64_t sink_tokens;
  /* Nonzero: this call's keys (and queries) are a shard of a longer sequence, as
   * simdattn::KeyShard (attention.hpp) says: key row j is the sequence's key shard_key_offset + j,
   * every diagonal moves by shard_diagonal_shift, and kv_lengths and sink_tokens count the
   * sequence's keys. 0, the default and what an older caller's shorter struct implies: no shard. */
  int32_t is_shard;
  int64_t shard_key_offset;
  int64_t shard_diagonal_shift;
} simdattn_options;

/* Sets every field that fits in struct_size bytes to its default (windows -1, the rest 0 or NULL)
 * and options->struct_size to min(struct_size, this library's sizeof(simdattn_options)); never
 * writes past struct_size bytes. A NULL options does nothing. */
SIMDATTN_API void simdattn_options_init_sized(simdattn_options *options, size_t struct_size);

/* The defaults for the struct of the header the caller compiles with: a macro, so that the size is
 * the caller's sizeof and a newer library never writes past an older caller's struct. */
#define simdattn_options_init(options) simdattn_options_init_sized((options), sizeof *(options))

/* The function the macro replaces, kept for programs built against headers older than
 * simdattn_options_init_sized, and for FFI bindings that call symbols by name: it initialises only
 * the struct's first layout (the fields up to `algorithm`), the most such a caller can hold.
 * Bindings that want the newer fields call simdattn_options_init_sized(&o, sizeof o). */
SIMDATTN_API void(simdattn_options_init)(simdattn_options *options);

/* out[b,h,i,:] = sum_j softmax_j(scale * q[b,h,i,:].k[b,h',j,:] + bias) * v[b,h',j,:],
 * h' = h / (Hq / Hkv). q [B,Hq,Sq,D], k [B,Hkv,Sk,D], v [B,Hkv,Sk,Dv], out [B,Hq,Sq,Dv].
 * options NULL: the defaults of simdattn_options_init(). */
SIMDATTN_API simdattn_status simdattn_attention(const simdattn_tensor *q, const simdattn_tensor *k,
                                                const simdattn_tensor *v, const simdattn_tensor *out,
                                                const simdattn_options *options);

/* Packed batches (simdattn/serving.hpp's attention_varlen): sequence b's queries are positions
 * [cu_seqlens_q[b], cu_seqlens_q[b+1]) of q [1,Hq,total_q,D] (the packed [total_q,Hq,D] tensor:
 * strides {total_q*Hq*D, D, Hq*D, 1}), its keys rows [cu_seqlens_k[b], cu_seqlens_k[b+1]) of
 * k [1,Hkv,total_k,D] and v; out packed as q. batch + 1 offsets each, 0 first, never decreasing,
 * the total last. Options apply per sequence; kv_lengths and weights are rejected; lse is
 * [1,Hq,total_q,1], a mask [1,Hq|1,total_q|1,max_k], k_scale/v_scale [1,Hkv,total_k,G]. */
SIMDATTN_API simdattn_status simdattn_attention_varlen(const simdattn_tensor *q, const simdattn_tensor *k,
                                                       const simdattn_tensor *v, const simdattn_tensor *out,
                                                       const int32_t *cu_seqlens_q,
                                                       const int32_t *cu_seqlens_k, int64_t batch,
                                                       const simdattn_options *options);
/* A paged K/V cache (simdattn::PagedCache): pools [num_blocks, Hkv, block_size, D] and
 * [.., Dv] of one dtype; sequence b's key j lies at row j % block_size of block
 * block_table[b * blocks_per_sequence + j / block_size]; seq_lens[b] keys per sequence. */
typedef struct simdattn_paged_cache {
  const simdattn_tensor *k_pages, *v_pages;
  const simdattn_tensor *k_scale_pages, *v_scale_pages; /* SIMDATTN_I8 pools only, else NULL */
  const int32_t *block_table;                           /* [batch, blocks_per_sequence] */
  int64_t blocks_per_sequence;
  const int32_t *seq_lens;                              /* [batch] */
} simdattn_paged_cache;
/* Packed queries (as simdattn_attention_varlen) over a paged cache: chunked prefill, and decoding
 * with one query per sequence. options->k_scale and v_scale are rejected (the cache has them). */
SIMDATTN_API simdattn_status simdattn_attention_paged(const simdattn_tensor *q,
                                                      const simdattn_paged_cache *cache,
                                                      const simdattn_tensor *out,
                                                      const int32_t *cu_seqlens_q, int64_t batch,
                                                      const simdattn_options *options);
/* scores[b,h,i,j] = scale * q[b,h,i,:].k[b,h',j,:]; scores [B,Hq,Sq,Sk]. scale is used as given,
 * as in the C++ qk_scores() (pass 1/sqrt(D) for scaled dot-product scores). num_threads 0: default. */
SIMDATTN_API simdattn_status simdattn_qk_scores(const simdattn_tensor *q, const simdattn_tensor *k,
                                                const simdattn_tensor *scores, float scale,
                                                int32_t num_threads);

/* In place, per row: x <- exp(x - max) / sum exp(x - max); -inf gets 0, an all -inf row zeros. */
SIMDATTN_API simdattn_status simdattn_softmax_rows(const simdattn_tensor *scores, int32_t num_threads);

/* simdattn_softmax_rows with attention sinks: sinks NULL or one logit per head (scores.shape[1]),
 * an extra denominator term per row with no entry of its own (see simdattn_options.sinks). */
SIMDATTN_API simdattn_status simdattn_softmax_rows_with_sinks(const simdattn_tensor *scores,
                                                              const float *sinks,
                                                              int32_t num_threads);

/* out[b,h,i,:] = sum_j weights[b,h,i,j] * v[b,h',j,:]; weights [B,Hq,Sq,Sk], out [B,Hq,Sq,Dv]. */
SIMDATTN_API simdattn_status simdattn_weights_v(const simdattn_tensor *weights,
                                                const simdattn_tensor *v,
                                                const simdattn_tensor *out, int32_t num_threads);

/* destination = source element by element (simdattn/convert.hpp's convert()): each SIMDATTN_F32,
 * SIMDATTN_BF16 or SIMDATTN_F16, of one shape; narrowing rounds to nearest even. */
SIMDATTN_API simdattn_status simdattn_convert(const simdattn_tensor *source,
                                              const simdattn_tensor *destination);

/* Symmetric int8 quantization in groups (quantize_rows() of simdattn/convert.hpp): source
 * F32/BF16/F16 [B,H,S,D], destination SIMDATTN_I8 [B,H,S,D], scales SIMDATTN_F32 [B,H,S,G], G
 * dividing D; scale = max|x| / 127 per group. The scales are what simdattn_options' k_scale and
 * v_scale take. */
SIMDATTN_API simdattn_status simdattn_quantize_rows(const simdattn_tensor *source,
                                                    const simdattn_tensor *destination,
                                                    const simdattn_tensor *scales);

/* Merges count states (outs[i] F32/BF16/F16 [B,H,S,Dv], lses[i] F32 [B,H,S,1], as simdattn_attention
 * returns them for disjoint key sets) into attention over all their keys: out, and lse unless NULL
 * (merge_attention_states() of simdattn/merge.hpp). */
SIMDATTN_API simdattn_status simdattn_merge_attention_states(const simdattn_tensor *outs,
                                                             const simdattn_tensor *lses,
                                                             int64_t count,
                                                             const simdattn_tensor *out,
                                                             const simdattn_tensor *lse,
                                                             int32_t num_threads);

/* This thread's message for its last failed call ("" before any failure); never NULL. */
SIMDATTN_API const char *simdattn_last_error(void);

/* "MAJOR.MINOR.PATCH" of the library actually loaded (the headers' own: SIMDATTN_VERSION_MAJOR,
 * _MINOR, _PATCH in simdattn/version.h). */
SIMDATTN_API const char *simdattn_version(void);

/* "sse2", "avx2", "avx512" or "amx" on x86-64, "neon" on AArch64: the instruction set the kernels run
   with (SIMDATTN_ISA caps it).
   "unknown" when SIMDATTN_ISA holds no such name; simdattn_last_error() then says why, and every
   call fails with SIMDATTN_ERR_INVALID_ARGUMENT and that message. */
SIMDATTN_API const char *simdattn_active_isa(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SIMDATTN_SIMDATTN_H */
