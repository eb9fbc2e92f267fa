"""simdattn.reference: the scalar oracles. Plain loops with double accumulation, never tuned:
they define what "correct" means for every fast function, take the same arrays and options
(without num_threads and algorithm) and check arguments the same way. Slow; for tests.

Every dtype is read as the exact value it stores (bfloat16 and float16 widened to double, an
int8 element as int8 · scale in double), so these compute the exact attention of the inputs as
stored; a 16-bit result is the double result rounded once to nearest even."""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

from . import _attention
from . import _serving
from . import _simdattn

__all__ = ["attention", "attention_varlen", "attention_paged", "qk_scores", "softmax_rows", "weights_v", "merge_attention_states",
           "dot_product", "softmax", "softmax_naive", "weighted_sum", "single_query_attention"]


def attention(q: Any, k: Any, v: Any, *, scale: Optional[float] = None,
              causal: Optional[str] = None, window: Optional[Tuple[Optional[int], Optional[int]]] = None,
              mask: Any = None, kv_lengths: Optional[Sequence[int]] = None, softcap: float = 0.0,
              alibi_slopes: Optional[Sequence[float]] = None, sinks: Any = None,
              sink_tokens: int = 0, return_lse: bool = False, return_weights: bool = False,
              out: Any = None, layout: str = "bhsd", k_scale: Any = None, v_scale: Any = None,
              out_dtype: Any = None, shard: Optional[Tuple[int, int]] = None) -> Any:
    """The oracle of simdattn.attention: same arguments (no num_threads, no algorithm), same
    results, computed in double and rounded once."""
    return _attention.attention("simdattn.reference.attention", True, q, k, v, scale, causal,
                                window, mask, kv_lengths, softcap, alibi_slopes, return_lse,
                                return_weights, out, 0, "auto", layout, k_scale, v_scale,
                                out_dtype, sinks, sink_tokens, shard)


def attention_varlen(q: Any, k: Any, v: Any, cu_seqlens_q: Any, cu_seqlens_k: Any, *,
                     scale: Optional[float] = None, causal: Optional[str] = None,
                     window: Optional[Tuple[Optional[int], Optional[int]]] = None,
                     mask: Any = None, softcap: float = 0.0, alibi_slopes: Any = None,
                     sinks: Any = None, sink_tokens: int = 0, return_lse: bool = False,
                     out: Any = None, k_scale: Any = None, v_scale: Any = None,
                     out_dtype: Any = None) -> Any:
    """The oracle of simdattn.attention_varlen: each sequence unpacked and computed by the
    reference attention."""
    return _serving.attention_varlen(
        "simdattn.reference.attention_varlen", True, q, k, v, cu_seqlens_q, cu_seqlens_k,
        scale=scale, causal=causal, window=window, mask=mask, softcap=softcap,
        alibi_slopes=alibi_slopes, sinks=sinks, sink_tokens=sink_tokens, return_lse=return_lse,
        out=out, num_threads=0, algorithm="auto", k_scale=k_scale, v_scale=v_scale,
        out_dtype=out_dtype)


def attention_paged(q: Any, k_cache: Any, v_cache: Any, block_table: Any, seq_lens: Any,
                    cu_seqlens_q: Any = None, *, scale: Optional[float] = None,
                    causal: Optional[str] = None,
                    window: Optional[Tuple[Optional[int], Optional[int]]] = None,
                    mask: Any = None, softcap: float = 0.0, alibi_slopes: Any = None,
                    sinks: Any = None, sink_tokens: int = 0, return_lse: bool = False,
                    out: Any = None, k_scale: Any = None, v_scale: Any = None,
                    out_dtype: Any = None, layout: str = "bhsd") -> Any:
    """The oracle of simdattn.attention_paged: each sequence's pages gathered and computed by
    the reference attention."""
    return _serving.attention_paged(
        "simdattn.reference.attention_paged", True, q, k_cache, v_cache, block_table, seq_lens,
        cu_seqlens_q, scale=scale, causal=causal, window=window, mask=mask, softcap=softcap,
        alibi_slopes=alibi_slopes, sinks=sinks, sink_tokens=sink_tokens,
        return_lse=return_lse, out=out, num_threads=0, algorithm="auto", k_scale=k_scale,
        v_scale=v_scale, out_dtype=out_dtype, layout=layout)


def qk_scores(q: Any, k: Any, *, scale: Optional[float] = None, out: Any = None,
              layout: str = "bhsd", k_scale: Any = None) -> Any:
    """The oracle of simdattn.qk_scores."""
    return _attention.qk_scores("simdattn.reference.qk_scores", True, q, k, scale=scale,
                                out=out, num_threads=0, layout=layout, k_scale=k_scale)


def softmax_rows(scores: Any, *, sinks: Any = None) -> Any:
    """The oracle of simdattn.softmax_rows (in place; returns scores): with sinks, the softmax
    of each row with its head's sink appended, in double, the sink's entry dropped."""
    return _attention.softmax_rows("simdattn.reference.softmax_rows", True, scores,
                                   num_threads=0, sinks=sinks)


def weights_v(weights: Any, v: Any, *, out: Any = None, layout: str = "bhsd",
              v_scale: Any = None, out_dtype: Any = None) -> Any:
    """The oracle of simdattn.weights_v."""
    return _attention.weights_v("simdattn.reference.weights_v", True, weights, v, out=out,
                                num_threads=0, layout=layout, v_scale=v_scale,
                                out_dtype=out_dtype)


def merge_attention_states(outs: Sequence[Any], lses: Sequence[Any], *, out: Any = None,
                           out_dtype: Any = None, return_lse: bool = False,
                           layout: str = "bhsd") -> Any:
    """The oracle of simdattn.merge_attention_states (every state read exactly, in double)."""
    return _attention.merge_attention_states("simdattn.reference.merge_attention_states", True,
                                             outs, lses, out=out, out_dtype=out_dtype,
                                             return_lse=return_lse, num_threads=0,
                                             layout=layout)


# --- Single vectors (Python sequences of floats), as in the teaching documents ---

def dot_product(a: Sequence[float], b: Sequence[float]) -> float:
    """Σ_i a[i]·b[i] in double. ValueError when the lengths differ."""
    return _simdattn.dot_product(list(a), list(b))


def softmax(scores: Sequence[float]) -> List[float]:
    """exp(x - max) / Σ exp(x - max): finite for any finite input; -inf entries get 0."""
    return _simdattn.softmax(list(scores))


def softmax_naive(scores: Sequence[float]) -> List[float]:
    """exp(x) / Σ exp(x), the textbook formula, kept for contrast: NaN for scores near 710."""
    return _simdattn.softmax_naive(list(scores))


def weighted_sum(weights: Sequence[float], values: Sequence[Sequence[float]]) -> List[float]:
    """Σ_j weights[j] · values[j]; values is a list of equally long vectors, one per weight."""
    return _simdattn.weighted_sum(list(weights), [list(value) for value in values])


def single_query_attention(query: Sequence[float], keys: Sequence[Sequence[float]],
                           values: Sequence[Sequence[float]], scale: float = 1.0) -> List[float]:
    """weighted_sum(softmax(scale · keys·query), values) for one query."""
    return _simdattn.single_query_attention(list(query), [list(key) for key in keys],
                                            [list(value) for value in values], float(scale))
