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


def _threads(function: str, num_threads: Any) -> int:
    if isinstance(num_threads, bool) or not isinstance(num_threads, int):
        raise TypeError(f"{function}: num_threads must be an int, got "
                        f"{type(num_threads).__name__} {num_threads!r}")
    return num_threads


def attention(function: str, reference: bool, q: Any, k: Any, v: Any, scale: Optional[float],
              causal: Optional[str], window: Any, mask: Any, kv_lengths: Any, softcap: float,
              alibi_slopes: Any, return_lse: bool, return_weights: bool, out: Any,
              num_threads: int, algorithm: str, layout: str) -> Any:
    # Positional parameters: keyword passing through two layers costs about a microsecond.
    arrays = (q, k, v) if out is None else (q, k, v, out)
    if mask is None and _arrays.all_plain_float32(arrays):
        kind = "numpy"
        if out is not None:
            _arrays.check_writable(function, "out", out, kind)
    elif mask is None and _arrays.all_plain_torch_float32(arrays):
        kind = "torch"
    else:
        kind = _arrays.kind_of(function, q=q, k=k, v=v, mask=mask, out=out)
        for name, array in (("q", q), ("k", k), ("v", v)):
            _arrays.check_float32(function, name, array, kind)
        if out is not None:
            _arrays.check_float32(function, "out", out, kind)
            _arrays.check_writable(function, "out", out, kind)
    layout_code = _choice(function, "layout", layout, _LAYOUT)
    causal_code = _choice(function, "causal", causal, _CAUSAL)
    algorithm_code = _choice(function, "algorithm", algorithm, _ALGORITHM)
    window_left, window_right = _window(function, window)
    if type(num_threads) is not int:
        num_threads = _threads(function, num_threads)
    batch, dim1, dim2, _ = q.shape
    heads, queries = (dim1, dim2) if layout_code == 0 else (dim2, dim1)

    if out is None:
        out = _arrays.empty(kind, (batch, dim1, dim2, v.shape[3]))
    lse = weights = None
    if return_lse:
        lse = _arrays.empty(kind, (batch, heads, queries))
    if return_weights:
        keys = k.shape[2] if layout_code == 0 else k.shape[1]
        weights = _arrays.empty(kind, (batch, heads, queries, keys))
    if mask is not None:
        _arrays.check_float32(function, "mask", mask, kind, ndim=None)
        mask = _arrays.for_core(mask, kind)
    if kv_lengths is not None:
        kv_lengths = _arrays.int64_vector(function, "kv_lengths", kv_lengths, batch)
    if alibi_slopes is not None:
        alibi_slopes = _arrays.float32_vector(function, "alibi_slopes", alibi_slopes, heads)
    if scale is not None:
        scale = float(scale)

    if kind == "numpy":
        _simdattn.attention(reference, q, k, v, out, scale, causal_code, window_left,
                            window_right, mask, kv_lengths, float(softcap), alibi_slopes, lse,
                            weights, num_threads, algorithm_code, layout_code)
    else:
        to_core = _arrays.for_core
        _simdattn.attention(reference, to_core(q, kind), to_core(k, kind), to_core(v, kind),
                            to_core(out, kind), scale, causal_code, window_left, window_right,
                            mask, kv_lengths, float(softcap), alibi_slopes,
                            None if lse is None else to_core(lse, kind),
                            None if weights is None else to_core(weights, kind), num_threads,
                            algorithm_code, layout_code)
    if not return_lse and not return_weights:
        return out
    extras = tuple(array for array in (lse, weights) if array is not None)
    return (out,) + extras


def qk_scores(function: str, reference: bool, q: Any, k: Any, *, scale: Optional[float],
              out: Any, num_threads: int, layout: str) -> Any:
    kind = _arrays.kind_of(function, q=q, k=k, out=out)
    _arrays.check_float32(function, "q", q, kind)
    _arrays.check_float32(function, "k", k, kind)
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
        _arrays.check_float32(function, "out", out, kind)
        _arrays.check_writable(function, "out", out, kind)
    _simdattn.qk_scores(reference, _arrays.for_core(q, kind), _arrays.for_core(k, kind),
                        _arrays.for_core(out, kind), float(scale), num_threads, layout_code)
    return out


def softmax_rows(function: str, reference: bool, scores: Any, *, num_threads: int) -> Any:
    kind = _arrays.kind_of(function, scores=scores)
    _arrays.check_float32(function, "scores", scores, kind, ndim=None)
    _arrays.check_writable(function, "scores", scores, kind)
    _simdattn.softmax_rows(reference, _arrays.for_core(scores, kind),
                           _threads(function, num_threads))
    return scores


def weights_v(function: str, reference: bool, weights: Any, v: Any, *, out: Any,
              num_threads: int, layout: str) -> Any:
    kind = _arrays.kind_of(function, weights=weights, v=v, out=out)
    _arrays.check_float32(function, "weights", weights, kind)
    _arrays.check_float32(function, "v", v, kind)
    layout_code = _choice(function, "layout", layout, _LAYOUT)
    num_threads = _threads(function, num_threads)
    batch, heads, queries, _ = _arrays.shape_tuple(weights)
    value_dim = int(v.shape[3])
    if out is None:
        shape = (batch, heads, queries, value_dim) if layout_code == 0 else (
            batch, queries, heads, value_dim)
        out = _arrays.empty(kind, shape)
    else:
        _arrays.check_float32(function, "out", out, kind)
        _arrays.check_writable(function, "out", out, kind)
    _simdattn.weights_v(reference, _arrays.for_core(weights, kind), _arrays.for_core(v, kind),
                        _arrays.for_core(out, kind), num_threads, layout_code)
    return out
