"""simdattn for PyTorch: a torch.library custom op, a drop-in for scaled_dot_product_attention,
and a context manager that routes torch's SDPA on CPU to simdattn.

    import torch, simdattn.torch
    out = simdattn.torch.scaled_dot_product_attention(q, k, v, is_causal=True)
    with simdattn.torch.route_sdpa():
        logits = model(tokens)     # every CPU torch.nn.functional.scaled_dot_product_attention

Tensors may be float32, bfloat16 or float16 (and int8 k and v with scales, through the op or
simdattn.attention); a result has the query's dtype, as torch's SDPA gives.

torch.ops.simdattn.attention is the custom op behind both; it has a fake (meta) implementation,
so torch.compile and torch.export trace through it. The op computes a forward pass only: it has
no autograd formula, so the router leaves calls that need gradients to torch.
"""
from __future__ import annotations

import contextlib
import math
import warnings
from typing import Iterator, Optional, Set, Tuple

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

import simdattn

__all__ = ["attention", "scaled_dot_product_attention", "route_sdpa", "FallbackWarning"]


class FallbackWarning(UserWarning):
    """route_sdpa() handed a call back to torch because simdattn does not cover it."""


# The dtypes simdattn computes attention on (and writes results in).
_FLOATING_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


@torch.library.custom_op("simdattn::attention", mutates_args=(), device_types="cpu")
def attention(q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor] = None,
              kv_lengths: Optional[Tensor] = None, alibi_slopes: Optional[Tensor] = None,
              scale: Optional[float] = None, causal: str = "none", window_left: int = -1,
              window_right: int = -1, softcap: float = 0.0, num_threads: int = 0,
              algorithm: str = "auto", layout: str = "bhsd", k_scale: Optional[Tensor] = None,
              v_scale: Optional[Tensor] = None,
              out_dtype: Optional[torch.dtype] = None, sinks: Optional[Tensor] = None,
              sink_tokens: int = 0) -> Tensor:
    """torch.ops.simdattn.attention: simdattn.attention on CPU tensors as a torch op.

    Same arguments as simdattn.attention, with causal "none" for None and the window as two
    ints; sinks is a tensor of Hq logits (any real dtype, used as float32). Returns a new
    contiguous tensor shaped like q with v's last dimension, of out_dtype (None: q's dtype)."""
    return simdattn.attention(q, k, v, mask=mask, kv_lengths=kv_lengths,
                              alibi_slopes=alibi_slopes, scale=scale,
                              causal=None if causal == "none" else causal,
                              window=(window_left, window_right), softcap=softcap,
                              num_threads=num_threads, algorithm=algorithm, layout=layout,
                              k_scale=k_scale, v_scale=v_scale, out_dtype=out_dtype,
                              sinks=sinks, sink_tokens=sink_tokens)


@attention.register_fake
def _attention_fake(q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor] = None,
                    kv_lengths: Optional[Tensor] = None, alibi_slopes: Optional[Tensor] = None,
                    scale: Optional[float] = None, causal: str = "none", window_left: int = -1,
                    window_right: int = -1, softcap: float = 0.0, num_threads: int = 0,
                    algorithm: str = "auto", layout: str = "bhsd",
                    k_scale: Optional[Tensor] = None, v_scale: Optional[Tensor] = None,
                    out_dtype: Optional[torch.dtype] = None, sinks: Optional[Tensor] = None,
                    sink_tokens: int = 0) -> Tensor:
    # The result's metadata only: what the real implementation returns, without computing it.
    torch._check(q.dim() == 4, lambda: f"simdattn::attention: q must have 4 dimensions, got {q.dim()}")
    if out_dtype is None:
        out_dtype = q.dtype if q.dtype in _FLOATING_DTYPES else torch.float32
    return q.new_empty((q.shape[0], q.shape[1], q.shape[2], v.shape[3]), dtype=out_dtype)


def _unsupported(query: Tensor, key: Tensor, value: Tensor, attn_mask: Optional[Tensor],
                 dropout_p: float, is_causal: bool, scale: Optional[float],
                 enable_gqa: bool) -> Optional[Tuple[type, str]]:
    """(exception type, reason) when simdattn cannot compute this SDPA call as torch would;
    None when it can."""
    for name, tensor in (("query", query), ("key", key), ("value", value)):
        if not isinstance(tensor, Tensor):
            return TypeError, f"{name} must be a torch.Tensor, got {type(tensor).__name__}"
        if tensor.dtype not in _FLOATING_DTYPES:
            return TypeError, (f"{name} must have dtype torch.float32, torch.bfloat16 or "
                               f"torch.float16, got {tensor.dtype}")
        if tensor.device.type != "cpu":
            return TypeError, f"{name} must be on the CPU, got device {tensor.device}"
    if key.dtype != query.dtype or value.dtype != query.dtype:
        return TypeError, (f"query, key and value must have one dtype (as in torch), got "
                           f"{query.dtype}, {key.dtype} and {value.dtype}")
    needs_grad = any(t is not None and t.requires_grad
                     for t in (query, key, value, attn_mask) if isinstance(t, Tensor))
    if needs_grad and torch.is_grad_enabled():
        return ValueError, ("inputs require gradients and simdattn computes no backward pass "
                            "(run under torch.no_grad() or torch.inference_mode())")
    if dropout_p != 0.0:
        return ValueError, f"dropout_p must be 0.0 (simdattn has no dropout), got {dropout_p}"
    if query.dim() not in (3, 4) or key.dim() != query.dim() or value.dim() != query.dim():
        return ValueError, ("query, key and value must all have 3 or 4 dimensions, got "
                            f"{query.dim()}, {key.dim()} and {value.dim()}")
    if key.shape[:-3] != query.shape[:-3] or value.shape[:-3] != query.shape[:-3]:
        return ValueError, (f"the batch dimensions of key {tuple(key.shape[:-3])} and value "
                            f"{tuple(value.shape[:-3])} must equal those of query "
                            f"{tuple(query.shape[:-3])} (no broadcasting)")
    q_heads, kv_heads = query.shape[-3], key.shape[-3]
    if value.shape[-3] != kv_heads:
        return ValueError, (f"value.size(-3) must equal key.size(-3) = {kv_heads}, got "
                            f"{value.shape[-3]}")
    if enable_gqa:
        if kv_heads == 0 or q_heads % kv_heads != 0:
            return ValueError, (f"with enable_gqa, key.size(-3) must divide query.size(-3) = "
                                f"{q_heads}, got {kv_heads}")
    elif kv_heads not in (q_heads, 1):
        return ValueError, (f"key.size(-3) must equal query.size(-3) = {q_heads} (or be 1, "
                            f"broadcast) without enable_gqa, got {kv_heads}")
    if attn_mask is not None:
        if is_causal:
            return ValueError, "attn_mask must be None when is_causal=True (as in torch)"
        if not isinstance(attn_mask, Tensor):
            return TypeError, f"attn_mask must be a torch.Tensor, got {type(attn_mask).__name__}"
        if attn_mask.dtype not in (torch.bool, torch.float32, query.dtype):
            return TypeError, ("attn_mask must have dtype torch.bool, torch.float32 or the "
                               f"query's ({query.dtype}), as in torch, got {attn_mask.dtype}")
        if attn_mask.device.type != "cpu":
            return TypeError, f"attn_mask must be on the CPU, got device {attn_mask.device}"
        target = tuple(query.shape[:-1]) + (key.shape[-2],)
        try:
            broadcast = torch.broadcast_shapes(tuple(attn_mask.shape), target)
        except RuntimeError:
            broadcast = None
        if broadcast != target:
            return ValueError, (f"attn_mask of shape {tuple(attn_mask.shape)} must broadcast to "
                                f"{target} (query's batch, heads and L; key's S)")
    if scale is not None and not math.isfinite(scale):
        return ValueError, f"scale must be finite, got {scale}"
    return None


def _sdpa(query: Tensor, key: Tensor, value: Tensor, attn_mask: Optional[Tensor],
          is_causal: bool, scale: Optional[float], num_threads: int = 0) -> Tensor:
    """torch's SDPA semantics on simdattn, for a call _unsupported() accepted."""
    three_d = query.dim() == 3
    if three_d:  # (N, L, E): N plays the heads
        query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
    mask = None
    if attn_mask is not None:
        mask = attn_mask
        if mask.dtype == torch.bool:  # True takes part in attention
            mask = torch.zeros(mask.shape, dtype=torch.float32).masked_fill(
                mask.logical_not(), float("-inf"))
        keys = key.shape[-2]
        if mask.shape[-1] != keys or (keys > 1 and mask.stride(-1) != 1):
            mask = mask.expand(tuple(mask.shape[:-1]) + (keys,)).contiguous()
    # Without enable_gqa a single kv head broadcasts: simdattn's multi-query attention.
    out = torch.ops.simdattn.attention(query, key, value, mask, None, None, scale,
                                       "top_left" if is_causal else "none", -1, -1, 0.0,
                                       num_threads)
    return out.squeeze(0) if three_d else out


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor,
                                 attn_mask: Optional[Tensor] = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: Optional[float] = None,
                                 enable_gqa: bool = False) -> Tensor:
    """torch.nn.functional.scaled_dot_product_attention, computed by simdattn.

    PyTorch's semantics: query (N, H, L, E) or (N, L, E), key (…, S, E), value (…, S, Ev);
    is_causal masks top-left (query i sees keys j <= i) and excludes attn_mask; a boolean
    attn_mask keeps the True positions, a float one is added to the scores, and either
    broadcasts to (…, L, S); scale None means 1/sqrt(E); enable_gqa lets key and value have
    fewer heads, which must divide query's. A query row that sees no key gives zeros.

    Raises ValueError for dropout_p > 0 (simdattn has no dropout), for inputs that need
    gradients, and for shapes torch would broadcast beyond the above; TypeError for tensors
    that are not float32, bfloat16 or float16 CPU tensors of one dtype. The result has the
    query's dtype (computed in float32, rounded once). route_sdpa() instead hands calls it
    cannot take back to torch."""
    problem = _unsupported(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa)
    if problem is not None:
        error_type, reason = problem
        raise error_type(f"simdattn.torch.scaled_dot_product_attention: {reason}")
    return _sdpa(query, key, value, attn_mask, is_causal, scale)


_SDPA_PARAMETERS = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale",
                    "enable_gqa")
_SDPA_DEFAULTS = {"attn_mask": None, "dropout_p": 0.0, "is_causal": False, "scale": None,
                  "enable_gqa": False}


class _RouteSdpa(TorchFunctionMode):
    """Sends torch.nn.functional.scaled_dot_product_attention to simdattn when it can, to torch
    otherwise, warning once per reason."""

    def __init__(self, num_threads: int, warned: Set[str]) -> None:
        super().__init__()
        self.num_threads = num_threads
        self.warned = warned
        self.routed_calls = 0
        self.fallback_calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.nn.functional.scaled_dot_product_attention:
            call = dict(_SDPA_DEFAULTS)
            call.update(zip(_SDPA_PARAMETERS, args))
            call.update(kwargs)
            if set(call) == set(_SDPA_PARAMETERS):
                problem = _unsupported(**call)
            else:
                problem = (TypeError, f"unknown arguments {sorted(set(call) - set(_SDPA_PARAMETERS))}")
            if problem is None:
                self.routed_calls += 1
                return _sdpa(call["query"], call["key"], call["value"], call["attn_mask"],
                             call["is_causal"], call["scale"], self.num_threads)
            self.fallback_calls += 1
            reason = problem[1]
            if reason not in self.warned:
                self.warned.add(reason)
                warnings.warn(f"simdattn.torch.route_sdpa: this scaled_dot_product_attention "
                              f"call runs on torch: {reason}", FallbackWarning, stacklevel=2)
        return func(*args, **kwargs)


@contextlib.contextmanager
def route_sdpa(num_threads: int = 0) -> Iterator[_RouteSdpa]:
    """Within the block, torch.nn.functional.scaled_dot_product_attention on float32, bfloat16
    and float16 CPU tensors runs on simdattn (through torch.ops.simdattn.attention), however the model refers to it.

    Calls simdattn does not cover (dropout, gradients, other dtypes or devices, broadcast batch
    dimensions) run on torch as before, and each distinct reason is reported once per block as
    a FallbackWarning. The object yielded counts routed_calls and fallback_calls."""
    mode = _RouteSdpa(num_threads, set())
    with mode:
        yield mode
