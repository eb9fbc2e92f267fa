"""simdattn: SIMD, cache-blocked, multithreaded scaled dot-product attention for CPUs.

Works on NumPy arrays and PyTorch CPU tensors in place: inputs are read through their strides
(any strides, with head_dim contiguous) and never copied, results are arrays of the same kind as
the inputs, and the GIL is released while the library computes. Everything is float32 today.

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
from . import _simdattn
from . import reference

__all__ = ["attention", "qk_scores", "softmax_rows", "weights_v", "reference", "active_isa",
           "__version__"]

__version__: str = _simdattn.version()


def active_isa() -> str:
    """The instruction set the kernels run with: 'sse2', 'avx2' or 'avx512' (the best the CPU
    has, capped by the environment variable SIMDATTN_ISA)."""
    return _simdattn.active_isa()


def attention(q: Any, k: Any, v: Any, *, scale: Optional[float] = None,
              causal: Optional[str] = None, window: Optional[Tuple[Optional[int], Optional[int]]] = None,
              mask: Any = None, kv_lengths: Optional[Sequence[int]] = None, softcap: float = 0.0,
              alibi_slopes: Optional[Sequence[float]] = None, return_lse: bool = False,
              return_weights: bool = False, out: Any = None, num_threads: int = 0,
              algorithm: str = "auto", layout: str = "bhsd") -> Any:
    """softmax(scale · q·kᵀ + masks) · v, for every batch entry and query head.

    Arrays: q [B, Hq, Sq, D], k [B, Hkv, Sk, D], v [B, Hkv, Sk, Dv] with layout="bhsd", or
    [B, S, H, D] with layout="bshd"; Hq must be a multiple of Hkv (multi-head, grouped-query and
    multi-query attention alike: query head h reads kv head h // (Hq // Hkv)). All are float32
    NumPy arrays or float32 PyTorch CPU tensors, of one kind, with any non-negative strides and
    a contiguous last dimension; none is copied.

    Options:
      scale: multiplies q·kᵀ; None means 1/sqrt(D).
      causal: None, "bottom_right" (query i sees keys j <= i + Sk - Sq: the KV-cache convention)
        or "top_left" (j <= i: PyTorch's is_causal). The causal mask, the window and ALiBi all
        measure from one diagonal, key i + off for query i: off = 0 under "top_left", and
        Sk - Sq (or kv_lengths[b] - Sq) under "bottom_right" and None.
      window: (left, right): query i sees keys i + off - left <= j <= i + off + right;
        None or -1 leaves a side unbounded.
      mask: additive float32 mask broadcastable to [B, Hq, Sq, Sk] (a size-1 or missing leading
        dimension broadcasts; zero strides are fine); -inf excludes a key.
      kv_lengths: B integers; keys j >= kv_lengths[b] do not exist for batch entry b.
      softcap: logits become softcap · tanh(logit / softcap) before any mask; 0 is off.
      alibi_slopes: Hq slopes; adds -slope · |i + off - j| to the logits.
      return_lse: also return the natural log-sum-exp of each row's logits, [B, Hq, Sq]
        (-inf for a row that sees no key).
      return_weights: also return the softmax weights [B, Hq, Sq, Sk] (not with "fused").
      out: where to write the result (same shape and layout as the result); returned as is.
      num_threads: OpenMP threads; 0 is OpenMP's default.
      algorithm: "auto", "composed" (materialise score blocks) or "fused" (online softmax).
      layout: "bhsd" or "bshd", for q, k, v and out.

    Returns out ([B, Hq, Sq, Dv] in the layout of q), or a tuple (out, lse), (out, weights) or
    (out, lse, weights) when asked for. A row that sees no key is zeros. Results have the kind
    of the inputs. The call does not record gradients.
    """
    return _attention.attention("simdattn.attention", False, q, k, v, scale, causal, window, mask,
                                kv_lengths, softcap, alibi_slopes, return_lse, return_weights,
                                out, num_threads, algorithm, layout)


def qk_scores(q: Any, k: Any, *, scale: Optional[float] = None, out: Any = None,
              num_threads: int = 0, layout: str = "bhsd") -> Any:
    """Stage 1: scores[b, h, i, j] = scale · q[b, h, i, :]·k[b, h // (Hq // Hkv), j, :].

    q [B, Hq, Sq, D] and k [B, Hkv, Sk, D] (or [B, S, H, D] with layout="bshd"); scale None means
    1/sqrt(D). Returns scores [B, Hq, Sq, Sk] (always in this order), or writes `out`."""
    return _attention.qk_scores("simdattn.qk_scores", False, q, k, scale=scale, out=out,
                                num_threads=num_threads, layout=layout)


def softmax_rows(scores: Any, *, num_threads: int = 0) -> Any:
    """Stage 2, in place: each row (last dimension) of scores becomes exp(x - max) / Σ exp(x - max).

    A -inf entry gets weight 0 and a row of only -inf becomes zeros. scores is a writable float32
    array of 1 to 4 dimensions; it is returned."""
    return _attention.softmax_rows("simdattn.softmax_rows", False, scores,
                                   num_threads=num_threads)


def weights_v(weights: Any, v: Any, *, out: Any = None, num_threads: int = 0,
              layout: str = "bhsd") -> Any:
    """Stage 3: out[b, h, i, :] = Σ_j weights[b, h, i, j] · v[b, h // (Hq // Hkv), j, :].

    weights [B, Hq, Sq, Sk], v [B, Hkv, Sk, Dv] (or [B, Sk, Hkv, Dv] with layout="bshd").
    Returns out [B, Hq, Sq, Dv] in the layout of v, or writes `out`."""
    return _attention.weights_v("simdattn.weights_v", False, weights, v, out=out,
                                num_threads=num_threads, layout=layout)
