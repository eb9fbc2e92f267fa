"""Shared helpers of the Python tests: seeded inputs, a NumPy float64 oracle written from the
contract in include/simdattn/attention.hpp (independent of the library's own reference), and the
error bound a float32 result is held to."""
from __future__ import annotations

import numpy as np
import pytest

FLOAT32_EPSILON = float(np.finfo(np.float32).eps)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261204)


def random_array(rng: np.random.Generator, *shape: int, low: float = -1.0,
                 high: float = 1.0) -> np.ndarray:
    return rng.uniform(low, high, size=shape).astype(np.float32)


def torch_uniform(*shape, generator, low: float = -1.0, high: float = 1.0, dtype=None):
    """A torch tensor of values uniform in [low, high), drawn in float32 from the torch.Generator
    `generator` and cast to dtype (float32 when None). For the tests that have torch: it is
    imported here, not at the top, so that NumPy-only runs never need it."""
    import torch

    values = torch.rand(*shape, generator=generator) * (high - low) + low
    return values if dtype is None else values.to(dtype)


def oracle_attention(q, k, v, *, scale=None, causal=None, window=(-1, -1), mask=None,
                     kv_lengths=None, softcap=0.0, alibi_slopes=None, sinks=None,
                     sink_tokens=0):
    """(out, lse, weights) in float64 for BHSD q [B, Hq, Sq, D], k [B, Hkv, Sk, D],
    v [B, Hkv, Sk, Dv]: softmax over the visible keys of scale·q·k, softcapped, minus ALiBi, plus
    the mask; rows that see no key give out 0, weights 0 and lse -inf. Keys j < sink_tokens are
    exempt from the window's left side. sinks (Hq logits, -inf: none) join each row of their head
    as one more softmax term whose column is then dropped: the weights sum to less than 1, lse
    includes the sink, and a row that sees no key gives out 0 and lse = the sink."""
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    batch, q_heads, queries, head_dim = q.shape
    kv_heads, keys = k.shape[1], k.shape[2]
    group = q_heads // kv_heads
    k = np.repeat(k, group, axis=1)
    v = np.repeat(v, group, axis=1)
    if scale is None:
        scale = 1.0 / np.sqrt(head_dim)
    logits = scale * np.einsum("bhid,bhjd->bhij", q, k)
    if softcap > 0.0:
        logits = softcap * np.tanh(logits / softcap)
    i = np.arange(queries)[:, None]
    j = np.arange(keys)[None, :]
    visible = np.ones((batch, 1, queries, keys), dtype=bool)
    for b in range(batch):
        length = keys if kv_lengths is None else int(kv_lengths[b])
        offset = 0 if causal == "top_left" else length - queries
        diagonal = i + offset
        seen = np.broadcast_to(j < length, (queries, keys)).copy()
        if causal is not None:
            seen &= j <= diagonal
        if window[0] >= 0:
            seen &= (j >= diagonal - window[0]) | (j < sink_tokens)
        if window[1] >= 0:
            seen &= j <= diagonal + window[1]
        visible[b, 0] = seen
        if alibi_slopes is not None:
            distance = np.abs(diagonal - j).astype(np.float64)
            logits[b] -= np.asarray(alibi_slopes, dtype=np.float64)[:, None, None] * distance
    if mask is not None:
        mask = np.asarray(mask, dtype=np.float64)
        logits = logits + mask
        visible = visible & (mask != -np.inf)
    logits = np.where(visible, logits, -np.inf)
    if sinks is not None:                         # the sink as one more column, dropped below
        sink = np.broadcast_to(np.asarray(sinks, dtype=np.float64)[None, :, None, None],
                               logits.shape[:3] + (1,))
        logits = np.concatenate([logits, sink], axis=-1)
        visible = np.concatenate([np.broadcast_to(visible, logits.shape[:3] + (keys,)),
                                  np.isfinite(sink)], axis=-1)
    largest = logits.max(axis=-1, keepdims=True)
    any_visible = np.isfinite(largest)
    shifted = np.where(visible, np.exp(logits - np.where(any_visible, largest, 0.0)), 0.0)
    total = shifted.sum(axis=-1, keepdims=True)
    weights = np.where(any_visible, shifted / np.where(any_visible, total, 1.0), 0.0)
    weights = weights[..., :keys]
    out = weights @ v
    lse = np.where(any_visible[..., 0], (largest + np.log(np.where(any_visible, total, 1.0)))[..., 0],
                   -np.inf)
    return out, lse, weights


def tolerance(q, k, v, scale=None) -> float:
    """Absolute error bound of a float32 attention output against the float64 oracle.

    A logit scale·q·k accumulates D products in float32: error <= D·eps·|scale|·max|q|·max|k|
    (the usual dot-product bound; doubled for the scale's and the exp's own roundings). A logit
    error δ changes each weight by a relative δ, so the output moves by <= 2δ·max|v|; the weighted
    sum of Sk values adds Sk·eps·max|v|. A factor 4 covers the exp's few-ulp error bound and the
    normalisation."""
    head_dim = q.shape[-1]
    keys = k.shape[-2] if k.ndim == 4 else 1
    if scale is None:
        scale = 1.0 / np.sqrt(max(head_dim, 1))
    largest = lambda x: float(np.max(np.abs(np.asarray(x)))) if np.asarray(x).size else 0.0
    logit_error = 2.0 * head_dim * FLOAT32_EPSILON * abs(scale) * largest(q) * largest(k)
    value = max(largest(v), 1.0)
    return 4.0 * (2.0 * logit_error + (keys + 4) * FLOAT32_EPSILON) * value


def assert_close(actual, expected, bound: float, what: str) -> None:
    """Every element within `bound`; the message names what, the worst index, expected and
    actual values."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    both_inf = np.isinf(actual) & np.isinf(expected) & (np.sign(actual) == np.sign(expected))
    with np.errstate(invalid="ignore"):
        error = np.where(both_inf, 0.0, np.abs(actual - expected))
    error = np.where(np.isnan(error), np.inf, error)
    if error.size and error.max() > bound:
        index = np.unravel_index(int(np.argmax(error)), error.shape)
        raise AssertionError(f"{what}: at index {tuple(int(x) for x in index)} expected "
                             f"{expected[index]!r}, got {actual[index]!r} (|error| "
                             f"{error[index]:.3g} > bound {bound:.3g}, shape {actual.shape})")


# --- 16-bit and int8 inputs ---------------------------------------------------------------------

UNIT_ROUNDOFF = 2.0 ** -24                        # u of float32
# Unit roundoff of a 16-bit result (half an ulp at 1): bfloat16 keeps 8 significant bits,
# float16 11.
UNIT_ROUNDOFF_16 = {"bfloat16": 2.0 ** -8, "float16": 2.0 ** -11}


def widen(array, scale=None) -> np.ndarray:
    """The exact values an array stores, in float64: bfloat16 and float16 widen exactly, and an
    int8 element is int8 · scale (scale [..., G], one per group of D / G consecutive elements)."""
    if hasattr(array, "detach"):                  # a torch tensor: float() is exact for 16 bits
        array = array.detach()
        array = (array.float() if array.is_floating_point() else array).numpy()
        if scale is not None:
            scale = scale.detach().numpy()
    values = np.asarray(array).astype(np.float64)
    if scale is not None:
        scale = np.asarray(scale, dtype=np.float64)
        values = values * np.repeat(scale, values.shape[-1] // scale.shape[-1], axis=-1)
    return values


def gamma(n: int) -> float:
    """γ(n) = n·u / (1 − n·u): the bound on a float32 sum or dot product of n terms."""
    return n * UNIT_ROUNDOFF / (1.0 - n * UNIT_ROUNDOFF)


def stored_tolerance(q, k, v, *, scale=None, mask=None, int8_cache=False, out_dtype="float32"):
    """The README's bound ("Guarantees", "Numerical accuracy against the float64 oracle") on
    |out − oracle| for BHSD float64 arrays q, k, v holding the exact stored values:

        V · (2δ + 3u + γ(Sk + 1) + γ(Sk) + u),   δ = γ(D + 6) · L,

    L bounding |logit| (scale · max Σ_d |q_d k_d| plus the largest finite |mask|), V = max |v|.
    An int8 cache adds 2u·L·V + u·V (each element widened to float is off by u relative); a
    16-bit result adds u₁₆ · (2V + bound), plus 2⁻²⁵ for float16's subnormals."""
    head_dim, keys = q.shape[-1], k.shape[-2]
    if scale is None:
        scale = 1.0 / np.sqrt(max(head_dim, 1))
    largest_dot = 0.0
    if q.size and k.size:
        largest_dot = float(np.max(np.einsum("...id,...jd->...ij", np.abs(q).max(axis=1),
                                             np.abs(k).max(axis=1))))
    logits = abs(scale) * largest_dot
    if mask is not None:
        finite = np.abs(mask[np.isfinite(mask)])
        logits += float(finite.max()) if finite.size else 0.0
    value = float(np.max(np.abs(v))) if v.size else 0.0
    u = UNIT_ROUNDOFF
    delta = gamma(head_dim + 6) * logits
    bound = value * (2 * delta + 3 * u + gamma(keys + 1) + gamma(keys) + u)
    if int8_cache:
        bound += 2 * u * logits * value + u * value
    if out_dtype in UNIT_ROUNDOFF_16:
        bound += UNIT_ROUNDOFF_16[out_dtype] * (2 * value + bound)
        if out_dtype == "float16":
            bound += 2.0 ** -25
    return bound
