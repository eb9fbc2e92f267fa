"""Attention sinks (sinks=, one logit per query head) and sink tokens (sink_tokens=, keys exempt
from the window's left side) on NumPy arrays: simdattn.attention, simdattn.reference.attention
and softmax_rows(scores, sinks=) against the float64 oracle of conftest.py (the softmax over
[logits..., sink] with the sink's column dropped), on the tiled, the composed and the split-K
decoding paths, in float32 and float16; and the errors for bad sinks."""
from __future__ import annotations

import numpy as np
import pytest

import simdattn
from conftest import (FLOAT32_EPSILON, assert_close, oracle_attention, random_array,
                      stored_tolerance, tolerance, widen)

# (B, Hq, Hkv, Sq, Sk, D, Dv): MHA, GQA around tile edges, MQA, and decoding rows over more keys
# than one decoding key chunk (1024), so that the fused path splits the keys and merges chunks.
SHAPES = [
    (1, 1, 1, 1, 1, 1, 1),
    (2, 4, 2, 7, 13, 16, 8),
    (1, 6, 1, 33, 65, 64, 64),
    (2, 8, 2, 1, 2500, 64, 32),
    (1, 4, 4, 3, 1500, 32, 32),
]

# Sink logits per query head, by name.
SINK_CASES = {
    "-inf": lambda heads: np.full(heads, -np.inf, np.float32),
    "0": lambda heads: np.zeros(heads, np.float32),
    "+1e4": lambda heads: np.full(heads, 1e4, np.float32),
    "-1e4": lambda heads: np.full(heads, -1e4, np.float32),
    "mixed": lambda heads: np.resize(np.array([-np.inf, 0.0, 1e4, -1e4, 1.5, -0.75, 3.0, -np.inf],
                                              np.float32), heads),
}


def shape_id(shape):
    return "B{}Hq{}Hkv{}Sq{}Sk{}D{}Dv{}".format(*shape)


def lse_bound(bound, expected_lse):
    """lse is float32: besides the output's bound, a few ulps of its own size (1e4 for a sink
    of 1e4 that outweighs every key)."""
    finite = np.abs(expected_lse[np.isfinite(expected_lse)])
    return 4 * bound + 4 * FLOAT32_EPSILON * (float(finite.max()) if finite.size else 0.0)


def inputs(rng, shape):
    batch, q_heads, kv_heads, queries, keys, head_dim, value_dim = shape
    q = random_array(rng, batch, q_heads, queries, head_dim, low=-2, high=2)
    k = random_array(rng, batch, kv_heads, keys, head_dim, low=-2, high=2)
    v = random_array(rng, batch, kv_heads, keys, value_dim)
    return q, k, v


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
@pytest.mark.parametrize("sinks_case", list(SINK_CASES))
@pytest.mark.parametrize("algorithm", ["auto", "composed", "fused"])
def test_sinks_match_the_oracles(shape, sinks_case, algorithm, rng):
    q, k, v = inputs(rng, shape)
    sinks = SINK_CASES[sinks_case](shape[1])
    out, lse = simdattn.attention(q, k, v, sinks=sinks, causal="bottom_right",
                                  algorithm=algorithm, return_lse=True)
    expected, expected_lse, _ = oracle_attention(q, k, v, sinks=sinks, causal="bottom_right")
    bound = tolerance(q, k, v)
    what = f"{shape} sinks {sinks_case} {algorithm}"
    assert out.dtype == np.float32 and lse.shape == shape[:2] + (shape[3],)
    assert_close(out, expected, bound, f"out {what}")
    assert_close(lse, expected_lse, lse_bound(bound, expected_lse), f"lse {what}")
    reference, reference_lse = simdattn.reference.attention(q, k, v, sinks=sinks,
                                                            causal="bottom_right",
                                                            return_lse=True)
    assert_close(reference, expected, bound, f"reference {what}")
    assert_close(reference_lse, expected_lse, lse_bound(bound, expected_lse),
                 f"reference lse {what}")


@pytest.mark.parametrize("shape", [SHAPES[1], SHAPES[3]], ids=shape_id)
def test_minus_infinity_sinks_give_the_bits_of_no_sinks(shape, rng):
    q, k, v = inputs(rng, shape)
    plain, plain_lse = simdattn.attention(q, k, v, causal="bottom_right", return_lse=True)
    out, lse = simdattn.attention(q, k, v, causal="bottom_right", return_lse=True,
                                  sinks=np.full(shape[1], -np.inf, np.float32))
    assert np.array_equal(out, plain) and np.array_equal(lse, plain_lse)


def test_weights_with_sinks_sum_to_less_than_one(rng):
    q, k, v = inputs(rng, (2, 4, 2, 5, 9, 16, 8))
    sinks = np.array([0.0, 2.0, -np.inf, -1.0], np.float32)
    out, lse, weights = simdattn.attention(q, k, v, sinks=sinks, return_lse=True,
                                           return_weights=True)
    expected, expected_lse, expected_weights = oracle_attention(q, k, v, sinks=sinks)
    bound = tolerance(q, k, v)
    assert_close(weights, expected_weights, bound, "weights with sinks")
    assert_close(out, expected, bound, "out with weights")
    assert_close(lse, expected_lse, 4 * bound, "lse with weights")
    sums = weights.sum(axis=-1, dtype=np.float64)
    assert np.all(sums[:, [0, 1, 3]] < 1.0 - 1e-3), "a finite sink takes some weight"
    assert_close(sums[:, 2], np.ones_like(sums[:, 2]), 1e-5, "a -inf sink takes none")


def test_a_row_that_sees_no_key_gives_zeros_and_lse_the_sink(rng):
    q, k, v = inputs(rng, (2, 3, 3, 4, 6, 8, 8))
    sinks = np.array([0.5, -np.inf, 1e4], np.float32)
    out, lse = simdattn.attention(q, k, v, sinks=sinks, kv_lengths=[0, 6], return_lse=True)
    assert np.all(out[0] == 0.0)
    assert np.array_equal(lse[0], np.broadcast_to(sinks[:, None], (3, 4)))
    expected, expected_lse, _ = oracle_attention(q, k, v, sinks=sinks, kv_lengths=[0, 6])
    assert_close(out, expected, tolerance(q, k, v), "out")
    assert_close(lse, expected_lse, lse_bound(tolerance(q, k, v), expected_lse), "lse")


# --- sink tokens ---------------------------------------------------------------------------------

SINK_TOKEN_CASES = [
    # (shape, causal, window, sink_tokens)
    ((2, 4, 2, 17, 17, 16, 8), "bottom_right", (4, 0), 3),
    ((1, 4, 1, 9, 40, 32, 16), "top_left", (2, 1), 5),
    ((2, 3, 3, 12, 30, 16, 16), None, (6, 3), 1),
    ((1, 8, 2, 1, 2500, 64, 32), "bottom_right", (100, 0), 4),     # split-K decoding
    ((1, 4, 2, 5, 1500, 32, 32), "bottom_right", (300, 0), 64),
]


@pytest.mark.parametrize("case", SINK_TOKEN_CASES,
                         ids=lambda c: f"{shape_id(c[0])}-{c[1]}-w{c[2]}-n{c[3]}")
@pytest.mark.parametrize("with_sinks", [False, True], ids=["tokens", "tokens+sinks"])
@pytest.mark.parametrize("algorithm", ["auto", "composed", "fused"])
def test_sink_tokens_stay_visible_under_a_window(case, with_sinks, algorithm, rng):
    shape, causal, window, sink_tokens = case
    q, k, v = inputs(rng, shape)
    sinks = SINK_CASES["mixed"](shape[1]) if with_sinks else None
    options = dict(causal=causal, window=window, sink_tokens=sink_tokens, sinks=sinks)
    out, lse = simdattn.attention(q, k, v, algorithm=algorithm, return_lse=True, **options)
    expected, expected_lse, _ = oracle_attention(q, k, v, **options)
    bound = tolerance(q, k, v)
    assert_close(out, expected, bound, f"out {case} {algorithm}")
    assert_close(lse, expected_lse, lse_bound(bound, expected_lse), f"lse {case} {algorithm}")
    assert_close(simdattn.reference.attention(q, k, v, **options), expected, bound,
                 f"reference {case}")
    # The sink tokens matter: without them the window hides keys these rows see.
    without, _, _ = oracle_attention(q, k, v, causal=causal, window=window, sinks=sinks)
    assert np.max(np.abs(without - expected)) > 10 * bound


def test_sink_tokens_without_a_window_change_nothing(rng):
    q, k, v = inputs(rng, (2, 4, 2, 7, 13, 16, 8))
    plain = simdattn.attention(q, k, v, causal="bottom_right")
    assert np.array_equal(simdattn.attention(q, k, v, causal="bottom_right", sink_tokens=4), plain)
    assert np.array_equal(simdattn.attention(q, k, v, causal="bottom_right",
                                             sink_tokens=np.int64(0), window=(2, 0)),
                          simdattn.attention(q, k, v, causal="bottom_right", window=(2, 0)))


def test_sinks_are_read_from_lists_and_any_real_dtype(rng):
    q, k, v = inputs(rng, (1, 4, 2, 3, 5, 8, 8))
    sinks32 = np.array([0.25, -1.0, 2.0, -np.inf], np.float32)
    expected = simdattn.attention(q, k, v, sinks=sinks32)
    for sinks in (sinks32.tolist(), sinks32.astype(np.float64), sinks32.astype(np.float16),
                  np.array([0, -1, 2, -100], np.int32), np.repeat(sinks32, 2)[::2]):
        got = simdattn.attention(q, k, v, sinks=sinks)
        if np.asarray(sinks).dtype.kind == "i":
            got_expected = simdattn.attention(q, k, v, sinks=np.asarray(sinks, np.float32))
            assert np.array_equal(got, got_expected)
        else:
            assert np.array_equal(got, expected), type(sinks)


# --- 16-bit inputs -------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [SHAPES[1], SHAPES[3]], ids=shape_id)
@pytest.mark.parametrize("out_dtype", [None, "float32"])
@pytest.mark.parametrize("algorithm", ["composed", "fused"])
def test_sinks_on_float16_inputs(shape, out_dtype, algorithm, rng):
    q, k, v = (x.astype(np.float16) for x in inputs(rng, shape))
    sinks = SINK_CASES["mixed"](shape[1])
    options = dict(sinks=sinks, causal="bottom_right", window=(5, 0), sink_tokens=2)
    out, lse = simdattn.attention(q, k, v, out_dtype=out_dtype, algorithm=algorithm,
                                  return_lse=True, **options)
    expected_dtype = out_dtype or "float16"
    assert out.dtype == expected_dtype
    q64, k64, v64 = widen(q), widen(k), widen(v)
    expected, expected_lse, _ = oracle_attention(q64, k64, v64, **options)
    bound = stored_tolerance(q64, k64, v64, out_dtype=expected_dtype)
    assert_close(out, expected, bound, f"float16 out {shape} {algorithm}")
    assert_close(lse, expected_lse, lse_bound(bound, expected_lse) + 1e-6, "float16 lse")
    reference = simdattn.reference.attention(q, k, v, out_dtype=out_dtype, **options)
    assert_close(reference, expected, bound, "float16 reference")


# --- softmax_rows --------------------------------------------------------------------------------

def softmax_with_sinks(scores, sinks):
    """The NumPy reference: softmax over [row..., sink] in float64, the sink's column dropped;
    heads are dimension -3 (one head for scores of 1 or 2 dimensions)."""
    scores = np.asarray(scores, np.float64)
    sinks = np.asarray(sinks, np.float64)
    per_row = sinks.reshape(-1, 1, 1) if scores.ndim >= 3 else sinks.reshape(())
    sink = np.broadcast_to(per_row, scores.shape[:-1] + (1,))
    extended = np.concatenate([scores, sink], axis=-1)
    largest = extended.max(axis=-1, keepdims=True)
    any_finite = np.isfinite(largest)
    shifted = np.exp(extended - np.where(any_finite, largest, 0.0))
    total = shifted.sum(axis=-1, keepdims=True)
    return np.where(any_finite, shifted / np.where(any_finite, total, 1.0), 0.0)[..., :-1]


@pytest.mark.parametrize("scores_shape", [(2, 4, 5, 37), (3, 6, 11), (5, 9), (17,)],
                         ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("sinks_case", list(SINK_CASES))
def test_softmax_rows_with_sinks(scores_shape, sinks_case, rng):
    heads = scores_shape[-3] if len(scores_shape) >= 3 else 1
    sinks = SINK_CASES[sinks_case](heads)
    scores = random_array(rng, *scores_shape, low=-5, high=5)
    scores[..., ::7] = -np.inf
    expected = softmax_with_sinks(scores, sinks)
    fast = scores.copy()
    assert simdattn.softmax_rows(fast, sinks=sinks) is fast
    assert_close(fast, expected, 16 * FLOAT32_EPSILON, f"softmax_rows {sinks_case}")
    reference = simdattn.reference.softmax_rows(scores.copy(), sinks=sinks)
    assert_close(reference, expected, FLOAT32_EPSILON, f"reference softmax_rows {sinks_case}")
    if sinks_case == "-inf":
        assert np.array_equal(fast, simdattn.softmax_rows(scores.copy()))


def test_softmax_rows_with_sinks_composes_to_attention(rng):
    q, k, v = inputs(rng, (2, 4, 2, 6, 10, 16, 8))
    sinks = np.array([0.0, 1.0, -np.inf, -2.0], np.float32)
    weights = simdattn.softmax_rows(simdattn.qk_scores(q, k), sinks=sinks)
    out = simdattn.weights_v(weights, v)
    expected, _, expected_weights = oracle_attention(q, k, v, sinks=sinks)
    assert_close(weights, expected_weights, tolerance(q, k, v), "stage weights")
    assert_close(out, expected, tolerance(q, k, v), "stages out")
    assert_close(out, simdattn.attention(q, k, v, sinks=sinks), tolerance(q, k, v),
                 "stages vs attention")


# --- errors --------------------------------------------------------------------------------------

def bad_sink_cases(heads):
    good = np.zeros(heads, np.float32)
    nan, inf = good.copy(), good.copy()
    nan[1] = np.nan
    inf[heads - 1] = np.inf
    return {
        "too few": (ValueError, rf"sinks must be a 1-D sequence of {heads} entries, got shape "
                                rf"\({heads - 1},\)", dict(sinks=good[:-1])),
        "too many": (ValueError, rf"sinks must be a 1-D sequence of {heads} entries, got shape "
                                 rf"\({heads + 1},\)", dict(sinks=np.zeros(heads + 1, np.float32))),
        "2-D": (ValueError, rf"sinks must be a 1-D sequence of {heads} entries, got shape "
                            rf"\(1, {heads}\)", dict(sinks=good[None])),
        "complex": (TypeError, r"sinks must hold real numbers, got dtype complex64",
                    dict(sinks=good.astype(np.complex64))),
        "bool": (TypeError, r"sinks must hold real numbers, got dtype bool",
                 dict(sinks=np.ones(heads, bool))),
        "strings": (TypeError, r"sinks must hold real numbers, got dtype <U",
                    dict(sinks=["0"] * heads)),
        "NaN": (ValueError, r"options.sinks\[1\] must be finite or -inf \(no sink\), got nan",
                dict(sinks=nan)),
        "+inf": (ValueError, rf"options.sinks\[{heads - 1}\] must be finite or -inf \(no sink\), "
                             rf"got inf", dict(sinks=inf)),
        "negative sink_tokens": (ValueError, r"options.sink_tokens must be >= 0 \(0: off\), got -1",
                                 dict(sink_tokens=-1, window=(2, 0))),
        "float sink_tokens": (TypeError, r"sink_tokens must be an int, got float 1.5",
                              dict(sink_tokens=1.5)),
    }


@pytest.mark.parametrize("case", list(bad_sink_cases(4)))
def test_bad_sinks_raise_naming_the_argument_and_write_nothing(case, rng):
    q, k, v = inputs(rng, (1, 4, 2, 3, 5, 8, 8))
    error, message, arguments = bad_sink_cases(4)[case]
    for attention, name in ((simdattn.attention, "simdattn.attention"),
                            (simdattn.reference.attention, "simdattn.reference.attention")):
        out = np.full(q.shape, 7.0, np.float32)
        with pytest.raises(error, match=message) as raised:
            attention(q, k, v, out=out, **arguments)
        library_name = name.replace("simdattn.", "simdattn::").replace(".", "::")
        assert str(raised.value).startswith((name + ":", library_name + ":")), str(raised.value)
        assert np.all(out == 7.0), f"{case}: {name} wrote out"


@pytest.mark.parametrize("case", ["too few", "too many", "2-D", "complex", "NaN", "+inf"])
def test_bad_sinks_in_softmax_rows(case):
    error, message, arguments = bad_sink_cases(3)[case]
    message = message.replace("options.sinks", "sinks")
    for softmax_rows in (simdattn.softmax_rows, simdattn.reference.softmax_rows):
        scores = np.full((2, 3, 4, 5), 7.0, np.float32)
        with pytest.raises(error, match=message):
            softmax_rows(scores, **arguments)
        assert np.all(scores == 7.0)
    # A 2-D scores array has one head.
    with pytest.raises(ValueError,
                       match=r"sinks must be a 1-D sequence of 1 entries, got shape \(3,\)"):
        simdattn.softmax_rows(np.zeros((4, 5), np.float32), sinks=np.zeros(3, np.float32))
