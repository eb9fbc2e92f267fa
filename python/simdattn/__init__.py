"""simdattn: SIMD, cache-blocked, multithreaded scaled dot-product attention for CPUs.

Works on NumPy arrays and PyTorch CPU tensors in place: inputs are read through their strides
(any strides, with head_dim contiguous) and never copied, results are arrays of the same kind as
the inputs, and the GIL is released while the library computes.

Dtypes: q, k, v, out and masks in float32, bfloat16 (PyTorch tensors only: NumPy has no
bfloat16) or float16; k and v also in int8 with float32 scales (k_scale=, v_scale=). Inputs are
widened exactly and the arithmetic is float32; a result has q's dtype unless out= or out_dtype=
says otherwise. convert() and quantize_rows() fill such caches from float32.

    import numpy as np, simdattn
    q = np.random.rand(2, 8, 128, 64).astype(np.float32)      # [batch, heads, seq, head_dim]
    out = simdattn.attention(q, q, q, causal="bottom_right")

Errors raise ValueError (a shape, stride or option the library rejects; the message is the
library's and names the argument, the expected and the actual value) or TypeError (an argument
of the wrong kind or dtype). simdattn.reference holds the scalar oracles that define "correct";
simdattn.torch a torch.library op and a drop-in for torch's scaled_dot_product_attention.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

from . import _attention
from . import _convert
from . import _serving
from . import _simdattn
from . import reference

__all__ = ["attention", "attention_varlen", "attention_paged", "qk_scores", "softmax_rows", "weights_v", "merge_attention_states",
           "convert", "quantize_rows", "reference", "active_isa", "__version__"]

__version__: str = _simdattn.version()


def active_isa() -> str:
    """The instruction set the kernels run with: 'sse2', 'avx2' or 'avx512' (the best the CPU
    has, capped by the environment variable SIMDATTN_ISA)."""
    return _simdattn.active_isa()


def attention(q: Any, k: Any, v: Any, *, scale: Optional[float] = None,
              causal: Optional[str] = None, window: Optional[Tuple[Optional[int], Optional[int]]] = None,
              mask: Any = None, kv_lengths: Optional[Sequence[int]] = None, softcap: float = 0.0,
              alibi_slopes: Optional[Sequence[float]] = None, sinks: Any = None,
              sink_tokens: int = 0, return_lse: bool = False, return_weights: bool = False,
              out: Any = None, num_threads: int = 0, algorithm: str = "auto",
              layout: str = "bhsd", k_scale: Any = None, v_scale: Any = None,
              out_dtype: Any = None, shard: Optional[Tuple[int, int]] = None) -> Any:
    """softmax(scale · q·kᵀ + masks) · v, for every batch entry and query head.

    Arrays: q [B, Hq, Sq, D], k [B, Hkv, Sk, D], v [B, Hkv, Sk, Dv] with layout="bhsd", or
    [B, S, H, D] with layout="bshd"; Hq must be a multiple of Hkv (multi-head, grouped-query and
    multi-query attention alike: query head h reads kv head h // (Hq // Hkv)). All are NumPy
    arrays or PyTorch CPU tensors, of one kind, with any non-negative strides and a contiguous
    last dimension; none is copied.

    Dtypes: q float32, bfloat16 (tensors only) or float16; k and v one dtype, any of those or
    int8 with k_scale and v_scale. Values are widened exactly and computed in float32.

    Options:
      scale: multiplies q·kᵀ; None means 1/sqrt(D).
      causal: None, "bottom_right" (query i sees keys j <= i + Sk - Sq: the KV-cache convention)
        or "top_left" (j <= i: PyTorch's is_causal). The causal mask, the window and ALiBi all
        measure from one diagonal, key i + off for query i: off = 0 under "top_left", and
        Sk - Sq (or kv_lengths[b] - Sq) under "bottom_right" and None.
      window: (left, right): query i sees keys i + off - left <= j <= i + off + right;
        None or -1 leaves a side unbounded.
      mask: additive float32, bfloat16 or float16 mask broadcastable to [B, Hq, Sq, Sk] (a size-1 or missing leading
        dimension broadcasts; zero strides are fine); -inf excludes a key.
      kv_lengths: B integers; keys j >= kv_lengths[b] do not exist for batch entry b.
      softcap: logits become softcap · tanh(logit / softcap) before any mask; 0 is off.
      alibi_slopes: Hq slopes; adds -slope · |i + off - j| to the logits.
      sinks: Hq attention-sink logits (gpt-oss), a NumPy array, torch tensor or sequence of
        real numbers, used as float32: one more term exp(sinks[h]) in the softmax denominator
        of every row of query head h, with no value, so a row's weights sum to less than 1; lse
        includes it, and a row that sees no key gives zeros and lse = sinks[h]. Natural log,
        not scaled. -inf is no sink for that head (the same result as without sinks); NaN and
        +inf are refused.
      sink_tokens: N >= 0 (StreamingLLM): keys j < N stay visible however far window's left
        side would cut them off; causal, window's right side, kv_lengths and the mask still
        apply. 0 is off.
      return_lse: also return the natural log-sum-exp of each row's logits, [B, Hq, Sq]
        (-inf for a row that sees no key).
      return_weights: also return the softmax weights [B, Hq, Sq, Sk] (not with "fused").
      out: where to write the result (same shape and layout as the result, dtype float32,
        bfloat16 or float16, q's or not); returned as is.
      out_dtype: the dtype of a new result ("float32", "bfloat16", "float16", or a NumPy or
        torch dtype); None means q's. Not with out.
      k_scale, v_scale: float32 scales of an int8 k and v (required then, refused otherwise):
        element d of row (b, h, j) means scale[b, h, j, d // (D // G)] · k[b, h, j, d]. Shape
        [B, Hkv, Sk, G] (in k's layout: [B, Sk, Hkv, G] with "bshd"); G = 1 is one scale per
        row, and G must divide D (Dv for v_scale). Every scale finite and >= 0.
        quantize_rows() makes them.
      num_threads: OpenMP threads; 0 is OpenMP's default.
      algorithm: "auto", "composed" (materialise score blocks) or "fused" (online softmax).
      layout: "bhsd" or "bshd", for q, k, v and out.
      shard: (key_offset, diagonal_shift) when these keys (and queries) are a shard of a longer
        sequence whose keys are split across calls or machines: key row j is the sequence's
        key key_offset + j, and query i's diagonal is i + off + diagonal_shift, off measured
        over the sequence (0 under "top_left", else kv_lengths[b] or key_offset + Sk, minus
        Sq). Causal, window, ALiBi, sink_tokens and kv_lengths then count sequence positions
        (kv_lengths[b] may exceed key_offset + Sk). A shard of the queries, rows [q0, q0 + Sq)
        of Sq_total, passes diagonal_shift = q0 under "top_left" and q0 + Sq - Sq_total
        otherwise. Merge the shards' (out, lse) with merge_attention_states(). None: the
        keys are the whole sequence.

    Returns out ([B, Hq, Sq, Dv] in the layout of q), or a tuple (out, lse), (out, weights) or
    (out, lse, weights) when asked for. A row that sees no key is zeros. Results have the kind
    of the inputs; lse and weights are float32, out has q's dtype (or out_dtype's) and is
    rounded to nearest even once. The call does not record gradients.
    """
    return _attention.attention("simdattn.attention", False, q, k, v, scale, causal, window, mask,
                                kv_lengths, softcap, alibi_slopes, return_lse, return_weights,
                                out, num_threads, algorithm, layout, k_scale, v_scale, out_dtype,
                                sinks, sink_tokens, shard)


def attention_varlen(q: Any, k: Any, v: Any, cu_seqlens_q: Any, cu_seqlens_k: Any, *,
                     scale: Optional[float] = None, causal: Optional[str] = None,
                     window: Optional[Tuple[Optional[int], Optional[int]]] = None,
                     mask: Any = None, softcap: float = 0.0, alibi_slopes: Any = None,
                     sinks: Any = None, sink_tokens: int = 0, return_lse: bool = False,
                     out: Any = None, num_threads: int = 0, algorithm: str = "auto",
                     k_scale: Any = None, v_scale: Any = None, out_dtype: Any = None) -> Any:
    """attention() over a packed batch of sequences of different lengths, as
    flash_attn_varlen_func takes it: no padding, one call.

    q [total_q, Hq, D], k [total_k, Hkv, D] and v [total_k, Hkv, Dv] hold the batch's sequences
    one after another (dtypes, strides and kinds as in attention()). cu_seqlens_q and
    cu_seqlens_k ([batch + 1] integers, from 0, never decreasing, ending at total_q and
    total_k): sequence b's queries are rows cu_seqlens_q[b] to cu_seqlens_q[b + 1] - 1 of q, its
    keys those rows of cu_seqlens_k in k and v. A sequence may be empty.

    Every option of attention() applies to each sequence as if it were called alone: causal
    and the window align per sequence (bottom_right: its last query sees its last key), ALiBi
    counts its positions. mask broadcasts to [Hq, total_q, max_k] (max_k the longest
    sequence's keys, read at each sequence's own key indices; leading size-1 dimensions
    allowed). k_scale and v_scale (int8 k and v) are [total_k, Hkv, G]. No kv_lengths (the
    cu_seqlens say it) and no weights (call attention() per sequence for them).

    Returns out [total_q, Hq, Dv], or (out, lse) with return_lse, lse float32 [Hq, total_q] (as
    flash_attn_varlen_func's softmax_lse). The result does not depend on num_threads."""
    return _serving.attention_varlen(
        "simdattn.attention_varlen", False, q, k, v, cu_seqlens_q, cu_seqlens_k, scale=scale,
        causal=causal, window=window, mask=mask, softcap=softcap, alibi_slopes=alibi_slopes,
        sinks=sinks, sink_tokens=sink_tokens, return_lse=return_lse, out=out,
        num_threads=num_threads, algorithm=algorithm, k_scale=k_scale, v_scale=v_scale,
        out_dtype=out_dtype)


def attention_paged(q: Any, k_cache: Any, v_cache: Any, block_table: Any, seq_lens: Any,
                    cu_seqlens_q: Any = None, *, scale: Optional[float] = None,
                    causal: Optional[str] = None,
                    window: Optional[Tuple[Optional[int], Optional[int]]] = None,
                    mask: Any = None, softcap: float = 0.0, alibi_slopes: Any = None,
                    sinks: Any = None, sink_tokens: int = 0, return_lse: bool = False,
                    out: Any = None, num_threads: int = 0, algorithm: str = "auto",
                    k_scale: Any = None, v_scale: Any = None, out_dtype: Any = None,
                    layout: str = "bhsd") -> Any:
    """Packed queries over a paged K/V cache (vLLM's block tables): decoding, and chunked
    prefill against what is already cached.

    k_cache [num_blocks, Hkv, block_size, D] and v_cache [num_blocks, Hkv, block_size, Dv]
    (layout="bshd": [num_blocks, block_size, Hkv, D]) are pools of fixed-size blocks, in
    float32, bfloat16, float16, or int8 with k_scale and v_scale of the pools' shape with G
    as the last dimension. block_table [batch, blocks_per_sequence] (integers): sequence b's
    key j lies in block block_table[b, j // block_size], row j % block_size; blocks may be
    shared between sequences and appear in any order, and entries past a sequence's last block
    are not read. seq_lens [batch]: the keys cached for each sequence, its current chunk's own
    queries' keys included.

    q [total_q, Hq, D] packs each sequence's queries, cu_seqlens_q ([batch + 1], as in
    attention_varlen) saying where; None means one query per sequence (decoding). A sequence's
    queries are the last of its seq_lens[b] positions: causal and the window align
    bottom-right per sequence. Options, results and lse as attention_varlen."""
    return _serving.attention_paged(
        "simdattn.attention_paged", False, q, k_cache, v_cache, block_table, seq_lens,
        cu_seqlens_q, scale=scale, causal=causal, window=window, mask=mask, softcap=softcap,
        alibi_slopes=alibi_slopes, sinks=sinks, sink_tokens=sink_tokens,
        return_lse=return_lse, out=out, num_threads=num_threads, algorithm=algorithm,
        k_scale=k_scale, v_scale=v_scale, out_dtype=out_dtype, layout=layout)


def qk_scores(q: Any, k: Any, *, scale: Optional[float] = None, out: Any = None,
              num_threads: int = 0, layout: str = "bhsd", k_scale: Any = None) -> Any:
    """Stage 1: scores[b, h, i, j] = scale · q[b, h, i, :]·k[b, h // (Hq // Hkv), j, :].

    q [B, Hq, Sq, D] (float32, bfloat16 or float16) and k [B, Hkv, Sk, D] (those, or int8 with
    k_scale as in attention()), or [B, S, H, D] with layout="bshd"; scale None means 1/sqrt(D).
    Returns float32 scores [B, Hq, Sq, Sk] (always in this order), or writes `out`."""
    return _attention.qk_scores("simdattn.qk_scores", False, q, k, scale=scale, out=out,
                                num_threads=num_threads, layout=layout, k_scale=k_scale)


def softmax_rows(scores: Any, *, sinks: Any = None, num_threads: int = 0) -> Any:
    """Stage 2, in place: each row (last dimension) of scores becomes exp(x - max) / Σ exp(x - max).

    A -inf entry gets weight 0 and a row of only -inf becomes zeros. scores is a writable float32
    array of 1 to 4 dimensions; it is returned. sinks (as in attention()): one logit per head,
    the heads being scores.shape[-3] (1 for scores of 1 or 2 dimensions); each row of head h
    becomes exp(x - m) / (Σ exp(x - m) + exp(sinks[h] - m)), m = max(max x, sinks[h]): the
    softmax of the row with the sink appended, the sink's own entry dropped."""
    return _attention.softmax_rows("simdattn.softmax_rows", False, scores,
                                   num_threads=num_threads, sinks=sinks)


def weights_v(weights: Any, v: Any, *, out: Any = None, num_threads: int = 0,
              layout: str = "bhsd", v_scale: Any = None, out_dtype: Any = None) -> Any:
    """Stage 3: out[b, h, i, :] = Σ_j weights[b, h, i, j] · v[b, h // (Hq // Hkv), j, :].

    weights float32 [B, Hq, Sq, Sk], v [B, Hkv, Sk, Dv] (or [B, Sk, Hkv, Dv] with
    layout="bshd") in float32, bfloat16, float16, or int8 with v_scale as in attention().
    Returns out [B, Hq, Sq, Dv] in the layout of v, float32 unless out_dtype says otherwise, or
    writes `out` (float32, bfloat16 or float16)."""
    return _attention.weights_v("simdattn.weights_v", False, weights, v, out=out,
                                num_threads=num_threads, layout=layout, v_scale=v_scale,
                                out_dtype=out_dtype)


def merge_attention_states(outs: Sequence[Any], lses: Sequence[Any], *, out: Any = None,
                           out_dtype: Any = None, return_lse: bool = False,
                           num_threads: int = 0, layout: str = "bhsd") -> Any:
    """Attention over the union of disjoint key sets, from attention over each set.

    outs[i] [B, H, S, Dv] (float32, bfloat16 or float16; [B, S, H, Dv] with layout="bshd") and
    lses[i] float32 [B, H, S] are what attention(..., return_lse=True) returned for the same
    queries over the i-th set of keys. With M = max_i lses[i] and w_i = exp(lses[i] - M), row by
    row: out = Σ_i w_i · outs[i] / Σ_i w_i and lse = M + log Σ_i w_i, summed in increasing i
    (the result does not depend on num_threads). A state with lse -inf weighs nothing; a row
    whose states are all empty is zeros (lse -inf). Returns out (dtype of outs[0] unless out= or
    out_dtype= says otherwise), or (out, lse) with return_lse."""
    return _attention.merge_attention_states("simdattn.merge_attention_states", False, outs,
                                             lses, out=out, out_dtype=out_dtype,
                                             return_lse=return_lse, num_threads=num_threads,
                                             layout=layout)


def convert(source: Any, destination: Any = None, *, dtype: Any = None) -> Any:
    """destination[...] = source[...], between float32, bfloat16 (tensors only) and float16.

    source and destination have the same shape (1 to 4 dimensions, any non-negative strides,
    the last dimension contiguous) and must not overlap. Widening is exact; narrowing rounds
    to nearest even (overflow gives ±inf, NaN stays NaN), with the same bits on every CPU.
    Give destination (written in place and returned) or dtype (a new array of that dtype)."""
    return _convert.convert(source, destination, dtype)


def quantize_rows(source: Any, destination: Any = None, scales: Any = None, *,
                  groups: int = 1) -> Tuple[Any, Any]:
    """Symmetric int8 quantization in groups, as attention()'s k_scale / v_scale read it.

    Each row (last dimension, D elements) of source (float32, bfloat16 or float16, every element
    finite) is cut into G groups of D / G consecutive elements; per group scale = max |x| / 127
    and destination = round-to-nearest-even(x / scale) in [-127, 127] (an all-zero group: scale
    0, zeros). destination is int8 shaped like source, scales float32 shaped like source with
    G as its last dimension; both are allocated when not given (G = groups, which must divide
    D). Returns (destination, scales): scale · destination is within scale / 2 of source."""
    return _convert.quantize_rows(source, destination, scales, groups)
