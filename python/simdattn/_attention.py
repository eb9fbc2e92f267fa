"""attention() and the three stages, shared by the fast functions (simdattn.*) and the
reference oracles (simdattn.reference.*): argument kinds are checked and results allocated here;
the compiled core checks everything else through the library and raises its message."""
from __future__ import annotations

import math
import operator
from typing import Any, Optional, Tuple

from . import _arrays
from . import _simdattn

_CAUSAL = {None: 0, "bottom_right": 1, "top_left": 2}
_ALGORITHM = {"auto": 0, "composed": 1, "fused": 2}
_LAYOUT = {"bhsd": 0, "bshd": 1}


def _choice(function: str, name: str, value: Any, choices: dict) -> int:
    try:
        return choices[value]
    except (KeyError, TypeError):
        expected = ", ".join(repr(choice) for choice in choices)
        raise ValueError(f"{function}: {name} must be one of {expected}, got {value!r}") from None


def _window(function: str, window: Any) -> Tuple[int, int]:
    if window is None:
        return -1, -1
    try:
        left, right = window
    except (TypeError, ValueError):
        raise ValueError(f"{function}: window must be a pair (left, right), got {window!r}") from None
    sides = []
    for side_name, side in (("left", left), ("right", right)):
        if side is None:
            sides.append(-1)
            continue
        try:
            if isinstance(side, bool):
                raise TypeError
            sides.append(operator.index(side))  # int, numpy integers, ...
        except TypeError:
            raise TypeError(f"{function}: window {side_name} must be an int or None, got "
                            f"{type(side).__name__} {side!r}") from None
    return sides[0], sides[1]


def _integer(function: str, name: str, value: Any) -> int:
    """An int option (sink_tokens): int or a NumPy integer, never a bool or a float."""
    try:
        if isinstance(value, bool):
            raise TypeError
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{function}: {name} must be an int, got {type(value).__name__} "
                        f"{value!r}") from None


def _shard(function: str, shard: Any) -> Tuple[int, int]:
    """shard=(key_offset, diagonal_shift): two ints (the library bounds them)."""
    try:
        key_offset, diagonal_shift = shard
    except (TypeError, ValueError):
        raise ValueError(f"{function}: shard must be a pair (key_offset, diagonal_shift), got "
                         f"{shard!r}") from None
    return (_integer(function, "shard key_offset", key_offset),
            _integer(function, "shard diagonal_shift", diagonal_shift))


def _threads(function: str, num_threads: Any) -> int:
    if isinstance(num_threads, bool) or not isinstance(num_threads, int):
        raise TypeError(f"{function}: num_threads must be an int, got "
                        f"{type(num_threads).__name__} {num_threads!r}")
    return num_threads


def _new_output(function: str, kind: str, shape: Tuple[int, ...], like: Any,
                out_dtype: Any) -> Any:
    """A result array: of out_dtype when given, else of the dtype of `like` (q, weights, the
    first state)."""
    if out_dtype is None:
        dtype = _arrays.result_dtype(like)
    else:
        dtype = _arrays.resolve_dtype(function, "out_dtype", out_dtype, kind)
    return _arrays.empty(kind, shape, dtype)


def _given_output(function: str, out: Any, kind: str, out_dtype: Any, ndim: int = 4) -> None:
    _arrays.check_array(function, "out", out, kind, ndim=ndim)
    _arrays.check_writable(function, "out", out, kind)
    if out_dtype is not None:
        raise ValueError(f"{function}: give out or out_dtype, not both (out's dtype is the "
                         f"result's)")


def mask_and_per_head(function: str, kind: str, heads: int, mask: Any, alibi_slopes: Any,
                      sinks: Any) -> Tuple[Any, Any, Any]:
    """The options every attention entry shares that are arrays: the mask (checked, as the core
    takes it), and alibi_slopes and sinks as contiguous float32 [heads] (None stays None)."""
    if mask is not None:
        _arrays.check_array(function, "mask", mask, kind, ndim=None)
        mask = _arrays.for_core(mask, kind)
    if alibi_slopes is not None:
        alibi_slopes = _arrays.float32_vector(function, "alibi_slopes", alibi_slopes, heads)
    if sinks is not None:
        sinks = _arrays.float32_vector(function, "sinks", sinks, heads)
    return mask, alibi_slopes, sinks


def attention(function: str, reference: bool, q: Any, k: Any, v: Any, scale: Optional[float],
              causal: Optional[str], window: Any, mask: Any, kv_lengths: Any, softcap: float,
              alibi_slopes: Any, return_lse: bool, return_weights: bool, out: Any,
              num_threads: int, algorithm: str, layout: str, k_scale: Any = None,
              v_scale: Any = None, out_dtype: Any = None, sinks: Any = None,
              sink_tokens: Any = 0, shard: Any = None) -> Any:
    # Positional parameters: keyword passing through two layers costs about a microsecond.
    arrays = (q, k, v) if out is None else (q, k, v, out)
    plain = mask is None and k_scale is None and v_scale is None and out_dtype is None
    float32_only = True                          # float32 in, float32 out: the cheap path
    if plain and _arrays.all_plain_float32(arrays):
        kind = "numpy"
        if out is not None:
            _arrays.check_writable(function, "out", out, kind)
    elif plain and _arrays.all_plain_torch_float32(arrays):
        kind = "torch"
    else:
        float32_only = False
        kind = _arrays.kind_of(function, q=q, k=k, v=v, mask=mask, k_scale=k_scale,
                               v_scale=v_scale, out=out)
        for name, array in (("q", q), ("k", k), ("v", v)):
            _arrays.check_array(function, name, array, kind)
        if out is not None:
            _given_output(function, out, kind, out_dtype)
        for name, array in (("k_scale", k_scale), ("v_scale", v_scale)):
            if array is not None:
                _arrays.check_array(function, name, array, kind)
    layout_code = _choice(function, "layout", layout, _LAYOUT)
    causal_code = _choice(function, "causal", causal, _CAUSAL)
    algorithm_code = _choice(function, "algorithm", algorithm, _ALGORITHM)
    window_left, window_right = _window(function, window)
    if type(num_threads) is not int:
        num_threads = _threads(function, num_threads)
    batch, dim1, dim2, _ = q.shape
    heads, queries = (dim1, dim2) if layout_code == 0 else (dim2, dim1)

    if out is None:
        shape = (batch, dim1, dim2, v.shape[3])
        if float32_only:
            out = _arrays.empty(kind, shape)
        else:
            out = _new_output(function, kind, shape, q, out_dtype)
    lse = weights = None
    if return_lse:
        lse = _arrays.empty(kind, (batch, heads, queries))
    if return_weights:
        keys = k.shape[2] if layout_code == 0 else k.shape[1]
        weights = _arrays.empty(kind, (batch, heads, queries, keys))
    if mask is not None or alibi_slopes is not None or sinks is not None:
        mask, alibi_slopes, sinks = mask_and_per_head(function, kind, heads, mask, alibi_slopes,
                                                      sinks)
    if kv_lengths is not None:
        kv_lengths = _arrays.int64_vector(function, "kv_lengths", kv_lengths, batch)
    if type(sink_tokens) is not int:
        sink_tokens = _integer(function, "sink_tokens", sink_tokens)
    if scale is not None:
        scale = float(scale)
    if shard is not None:
        shard = _shard(function, shard)

    if kind == "numpy":
        _simdattn.attention(reference, q, k, v, out, scale, causal_code, window_left,
                            window_right, mask, kv_lengths, float(softcap), alibi_slopes, lse,
                            weights, num_threads, algorithm_code, layout_code, k_scale, v_scale,
                            sinks, sink_tokens, shard)
    else:
        to_core = _arrays.for_core
        _simdattn.attention(reference, to_core(q, kind), to_core(k, kind), to_core(v, kind),
                            to_core(out, kind), scale, causal_code, window_left, window_right,
                            mask, kv_lengths, float(softcap), alibi_slopes,
                            None if lse is None else to_core(lse, kind),
                            None if weights is None else to_core(weights, kind), num_threads,
                            algorithm_code, layout_code,
                            None if k_scale is None else to_core(k_scale, kind),
                            None if v_scale is None else to_core(v_scale, kind), sinks,
                            sink_tokens, shard)
    if not return_lse and not return_weights:
        return out
    extras = tuple(array for array in (lse, weights) if array is not None)
    return (out,) + extras


def _optional_for_core(array: Any, kind: str) -> Any:
    return None if array is None else _arrays.for_core(array, kind)


def qk_scores(function: str, reference: bool, q: Any, k: Any, *, scale: Optional[float],
              out: Any, num_threads: int, layout: str, k_scale: Any = None) -> Any:
    kind = _arrays.kind_of(function, q=q, k=k, k_scale=k_scale, out=out)
    _arrays.check_array(function, "q", q, kind)
    _arrays.check_array(function, "k", k, kind)
    if k_scale is not None:
        _arrays.check_array(function, "k_scale", k_scale, kind)
    layout_code = _choice(function, "layout", layout, _LAYOUT)
    num_threads = _threads(function, num_threads)
    batch, dim1, dim2, head_dim = _arrays.shape_tuple(q)
    heads, queries = (dim1, dim2) if layout_code == 0 else (dim2, dim1)
    keys = int(k.shape[2] if layout_code == 0 else k.shape[1])
    if scale is None:
        scale = 1.0 / math.sqrt(head_dim) if head_dim > 0 else 1.0
    if out is None:
        out = _arrays.empty(kind, (batch, heads, queries, keys))
    else:
        _given_output(function, out, kind, None)
    _simdattn.qk_scores(reference, _arrays.for_core(q, kind), _arrays.for_core(k, kind),
                        _arrays.for_core(out, kind), float(scale), num_threads, layout_code,
                        _optional_for_core(k_scale, kind))
    return out


def softmax_rows(function: str, reference: bool, scores: Any, *, num_threads: int,
                 sinks: Any = None) -> Any:
    kind = _arrays.kind_of(function, scores=scores)
    _arrays.check_array(function, "scores", scores, kind, ndim=None)
    _arrays.check_writable(function, "scores", scores, kind)
    if sinks is not None:
        # One sink per head: dimension -3 of scores (scores of 1 or 2 dimensions have one head).
        heads = int(scores.shape[-3]) if scores.ndim >= 3 else 1
        sinks = _arrays.float32_vector(function, "sinks", sinks, heads)
    _simdattn.softmax_rows(reference, _arrays.for_core(scores, kind),
                           _threads(function, num_threads), sinks)
    return scores


def weights_v(function: str, reference: bool, weights: Any, v: Any, *, out: Any,
              num_threads: int, layout: str, v_scale: Any = None, out_dtype: Any = None) -> Any:
    kind = _arrays.kind_of(function, weights=weights, v=v, v_scale=v_scale, out=out)
    _arrays.check_array(function, "weights", weights, kind)
    _arrays.check_array(function, "v", v, kind)
    if v_scale is not None:
        _arrays.check_array(function, "v_scale", v_scale, kind)
    layout_code = _choice(function, "layout", layout, _LAYOUT)
    num_threads = _threads(function, num_threads)
    batch, heads, queries, _ = _arrays.shape_tuple(weights)
    value_dim = int(v.shape[3])
    if out is None:
        shape = (batch, heads, queries, value_dim) if layout_code == 0 else (
            batch, queries, heads, value_dim)
        out = _new_output(function, kind, shape, weights, out_dtype)
    else:
        _given_output(function, out, kind, out_dtype)
    _simdattn.weights_v(reference, _arrays.for_core(weights, kind), _arrays.for_core(v, kind),
                        _arrays.for_core(out, kind), num_threads, layout_code,
                        _optional_for_core(v_scale, kind))
    return out


def merge_attention_states(function: str, reference: bool, outs: Any, lses: Any, *, out: Any,
                           out_dtype: Any, return_lse: bool, num_threads: int,
                           layout: str) -> Any:
    try:
        outs, lses = list(outs), list(lses)
    except TypeError:
        raise TypeError(f"{function}: outs and lses must be sequences of arrays, got "
                        f"{type(outs).__name__} and {type(lses).__name__}") from None
    named = {f"outs[{i}]": array for i, array in enumerate(outs)}
    named.update({f"lses[{i}]": array for i, array in enumerate(lses)})
    kind = _arrays.kind_of(function, **named, out=out)
    if not outs:
        raise ValueError(f"{function}: outs must hold at least one state, got none")
    for i, array in enumerate(outs):
        _arrays.check_array(function, f"outs[{i}]", array, kind)
    for i, array in enumerate(lses):
        _arrays.check_array(function, f"lses[{i}]", array, kind, ndim=3)
    layout_code = _choice(function, "layout", layout, _LAYOUT)
    num_threads = _threads(function, num_threads)
    first = outs[0]
    if out is None:
        out = _new_output(function, kind, _arrays.shape_tuple(first), first, out_dtype)
    else:
        _given_output(function, out, kind, out_dtype)
    batch, dim1, dim2, _ = _arrays.shape_tuple(out)
    lse = None
    if return_lse:
        lse = _arrays.empty(kind, (batch, dim1, dim2) if layout_code == 0 else (batch, dim2, dim1))
    _simdattn.merge_attention_states(reference, [_arrays.for_core(a, kind) for a in outs],
                                     [_arrays.for_core(a, kind) for a in lses],
                                     _arrays.for_core(out, kind), _optional_for_core(lse, kind),
                                     num_threads, layout_code)
    return (out, lse) if return_lse else out
