"""attention_varlen() and attention_paged(), shared by simdattn.* and simdattn.reference.*: the
serving layouts (packed batches of sequences of different lengths, paged K/V caches). Argument
kinds are checked and results allocated here; the library checks the rest (monotonic
cu_seqlens, block indices, lengths against the table, shapes, dtypes) and raises its message."""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

import numpy as np

from . import _arrays
from . import _attention
from . import _simdattn

# An array as the compiled core takes it (None stays None): attention()'s own helper.
_core = _attention._optional_for_core


class _Options(NamedTuple):
    """The options the serving calls share with attention(), converted for the compiled core."""
    scale: Optional[float]
    causal: int
    window_left: int
    window_right: int
    mask: Any
    softcap: float
    alibi_slopes: Any
    num_threads: int
    algorithm: int
    sinks: Any
    sink_tokens: int


def _options(function: str, kind: str, heads: int, scale: Any, causal: Any, window: Any,
             mask: Any, softcap: Any, alibi_slopes: Any, sinks: Any, sink_tokens: Any,
             num_threads: Any, algorithm: Any) -> _Options:
    window_left, window_right = _attention._window(function, window)
    mask, alibi_slopes, sinks = _attention.mask_and_per_head(function, kind, heads, mask,
                                                             alibi_slopes, sinks)
    return _Options(
        scale=None if scale is None else float(scale),
        causal=_attention._choice(function, "causal", causal, _attention._CAUSAL),
        window_left=window_left, window_right=window_right, mask=mask, softcap=float(softcap),
        alibi_slopes=alibi_slopes, num_threads=_attention._threads(function, num_threads),
        algorithm=_attention._choice(function, "algorithm", algorithm, _attention._ALGORITHM),
        sinks=sinks, sink_tokens=_attention._integer(function, "sink_tokens", sink_tokens))


def _results(function: str, kind: str, q: Any, value_dim: int, out: Any, out_dtype: Any,
             return_lse: bool) -> tuple:
    """(out, lse): out [total_q, Hq, Dv] (the caller's, checked, or new), lse [Hq, total_q]
    float32 when asked for."""
    total_q, heads = int(q.shape[0]), int(q.shape[1])
    if out is None:
        out = _attention._new_output(function, kind, (total_q, heads, value_dim), q, out_dtype)
    else:
        _attention._given_output(function, out, kind, out_dtype, ndim=3)
    lse = _arrays.empty(kind, (heads, total_q)) if return_lse else None
    return out, lse


def attention_varlen(function: str, reference: bool, q: Any, k: Any, v: Any, cu_seqlens_q: Any,
                     cu_seqlens_k: Any, *, scale: Any, causal: Any, window: Any, mask: Any,
                     softcap: Any, alibi_slopes: Any, sinks: Any, sink_tokens: Any,
                     return_lse: bool, out: Any, num_threads: Any, algorithm: Any, k_scale: Any,
                     v_scale: Any, out_dtype: Any) -> Any:
    kind = _arrays.kind_of(function, q=q, k=k, v=v, mask=mask, k_scale=k_scale, v_scale=v_scale,
                           out=out)
    for name, array in (("q", q), ("k", k), ("v", v), ("k_scale", k_scale), ("v_scale", v_scale)):
        if array is not None:
            _arrays.check_array(function, name, array, kind, ndim=3)
    options = _options(function, kind, int(q.shape[1]), scale, causal, window, mask, softcap,
                       alibi_slopes, sinks, sink_tokens, num_threads, algorithm)
    cu_q = _arrays.int32_array(function, "cu_seqlens_q", cu_seqlens_q, 1, "[batch + 1]")
    cu_k = _arrays.int32_array(function, "cu_seqlens_k", cu_seqlens_k, 1, "[batch + 1]")
    out, lse = _results(function, kind, q, int(v.shape[2]), out, out_dtype, return_lse)
    _simdattn.attention_varlen(
        reference, _core(q, kind), _core(k, kind), _core(v, kind), _core(out, kind), cu_q, cu_k,
        options.scale, options.causal, options.window_left, options.window_right, options.mask,
        options.softcap, options.alibi_slopes, _core(lse, kind), options.num_threads,
        options.algorithm, _core(k_scale, kind), _core(v_scale, kind), options.sinks,
        options.sink_tokens)
    return (out, lse) if return_lse else out


def attention_paged(function: str, reference: bool, q: Any, k_cache: Any, v_cache: Any,
                    block_table: Any, seq_lens: Any, cu_seqlens_q: Any, *, scale: Any,
                    causal: Any, window: Any, mask: Any, softcap: Any, alibi_slopes: Any,
                    sinks: Any, sink_tokens: Any, return_lse: bool, out: Any, num_threads: Any,
                    algorithm: Any, k_scale: Any, v_scale: Any, out_dtype: Any,
                    layout: Any) -> Any:
    kind = _arrays.kind_of(function, q=q, k_cache=k_cache, v_cache=v_cache, mask=mask,
                           k_scale=k_scale, v_scale=v_scale, out=out)
    _arrays.check_array(function, "q", q, kind, ndim=3)
    for name, array in (("k_cache", k_cache), ("v_cache", v_cache), ("k_scale", k_scale),
                        ("v_scale", v_scale)):
        if array is not None:
            _arrays.check_array(function, name, array, kind, ndim=4)
    layout_code = _attention._choice(function, "layout", layout, _attention._LAYOUT)
    options = _options(function, kind, int(q.shape[1]), scale, causal, window, mask, softcap,
                       alibi_slopes, sinks, sink_tokens, num_threads, algorithm)
    table = _arrays.int32_array(function, "block_table", block_table, 2,
                                "[batch, blocks_per_sequence]")
    lengths = _arrays.int32_array(function, "seq_lens", seq_lens, 1, "[batch]")
    if cu_seqlens_q is None:                     # decoding: one query per sequence
        cu_q = np.arange(table.shape[0] + 1, dtype=np.int32)
    else:
        cu_q = _arrays.int32_array(function, "cu_seqlens_q", cu_seqlens_q, 1, "[batch + 1]")
    out, lse = _results(function, kind, q, int(v_cache.shape[3]), out, out_dtype, return_lse)
    _simdattn.attention_paged(
        reference, _core(q, kind), _core(k_cache, kind), _core(v_cache, kind), table, lengths,
        cu_q, _core(out, kind), options.scale, options.causal, options.window_left,
        options.window_right, options.mask, options.softcap, options.alibi_slopes,
        _core(lse, kind), options.num_threads, options.algorithm, _core(k_scale, kind),
        _core(v_scale, kind), options.sinks, options.sink_tokens, layout_code)
    return (out, lse) if return_lse else out
