"""float16 and int8 NumPy arrays: attention and the stages against the float64 oracle of the
stored values, held to the README's bound; no copies; bad dtypes and scales; convert,
quantize_rows and merge_attention_states round trips. (bfloat16 needs PyTorch:
test_dtypes_torch.py.)"""
from __future__ import annotations

import numpy as np
import pytest

import simdattn
from simdattn import _simdattn
from conftest import (UNIT_ROUNDOFF, assert_close, oracle_attention, random_array,
                      stored_tolerance, widen)

# (B, Hq, Hkv, Sq, Sk, D, Dv): uneven, GQA, around tile edges, a decode row.
SHAPES = [
    (1, 1, 1, 1, 1, 1, 1),
    (2, 4, 2, 7, 13, 32, 16),
    (1, 8, 1, 1, 70, 64, 64),
    (2, 3, 3, 33, 17, 64, 32),
]
CACHES = ["float32", "float16", "int8-row", "int8-group"]


def make_cache(rng, cache, batch, heads, keys, head_dim, value_dim):
    """k, v and their scales (None unless int8) in the cache dtype."""
    k = random_array(rng, batch, heads, keys, head_dim, low=-2, high=2)
    v = random_array(rng, batch, heads, keys, value_dim)
    if not cache.startswith("int8"):
        return k.astype(cache), v.astype(cache), None, None
    # Scales per row, or per group of 8 elements where the row allows it.
    k_groups = head_dim // 8 if cache == "int8-group" and head_dim % 8 == 0 else 1
    v_groups = value_dim // 8 if cache == "int8-group" and value_dim % 8 == 0 else 1
    k8, k_scale = simdattn.quantize_rows(k, groups=k_groups)
    v8, v_scale = simdattn.quantize_rows(v, groups=v_groups)
    return k8, v8, k_scale, v_scale


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}Hq{}Hkv{}Sq{}Sk{}D{}Dv{}".format(*s))
@pytest.mark.parametrize("q_dtype", ["float32", "float16"])
@pytest.mark.parametrize("cache", CACHES)
@pytest.mark.parametrize("out_dtype", [None, "float32", "float16"])
@pytest.mark.parametrize("algorithm", ["composed", "fused"])
def test_attention_on_stored_values_matches_the_oracle(shape, q_dtype, cache, out_dtype,
                                                       algorithm, rng):
    batch, q_heads, kv_heads, queries, keys, head_dim, value_dim = shape
    q = random_array(rng, batch, q_heads, queries, head_dim, low=-2, high=2).astype(q_dtype)
    k, v, k_scale, v_scale = make_cache(rng, cache, batch, kv_heads, keys, head_dim, value_dim)
    out, lse = simdattn.attention(q, k, v, k_scale=k_scale, v_scale=v_scale, out_dtype=out_dtype,
                                  causal="bottom_right", algorithm=algorithm, return_lse=True)
    expected_dtype = out_dtype or q_dtype
    assert out.dtype == expected_dtype and lse.dtype == np.float32
    q64, k64, v64 = widen(q), widen(k, k_scale), widen(v, v_scale)
    expected, expected_lse, _ = oracle_attention(q64, k64, v64, causal="bottom_right")
    bound = stored_tolerance(q64, k64, v64, int8_cache=k_scale is not None,
                             out_dtype=expected_dtype)
    what = f"{shape} q {q_dtype} cache {cache} out {expected_dtype} {algorithm}"
    assert_close(out, expected, bound, f"out {what}")
    assert_close(lse, expected_lse, 4 * bound + 1e-6, f"lse {what}")
    # The library's oracle reads the same stored values: the same result within the bound.
    reference = simdattn.reference.attention(q, k, v, k_scale=k_scale, v_scale=v_scale,
                                             out_dtype=out_dtype, causal="bottom_right")
    assert reference.dtype == expected_dtype
    assert_close(reference, expected, bound, f"reference {what}")


@pytest.mark.parametrize("mask_dtype", ["float32", "float16"])
def test_masks_in_16_bits(mask_dtype, rng):
    q = random_array(rng, 2, 4, 9, 16).astype(np.float16)
    k = random_array(rng, 2, 2, 11, 16).astype(np.float16)
    mask = random_array(rng, 2, 1, 9, 11, low=-3, high=3)
    mask[rng.uniform(size=mask.shape) < 0.2] = -np.inf
    mask = mask.astype(mask_dtype)
    out = simdattn.attention(q, k, k, mask=mask, window=(4, 2))
    q64, k64, mask64 = widen(q), widen(k), widen(mask)
    expected, _, _ = oracle_attention(q64, k64, k64, mask=mask64, window=(4, 2))
    assert_close(out, expected, stored_tolerance(q64, k64, k64, mask=mask64, out_dtype="float16"),
                 f"mask {mask_dtype}")


def test_stages_on_an_int8_cache_compose_to_attention(rng):
    q = random_array(rng, 2, 4, 6, 32).astype(np.float16)
    k8, k_scale = simdattn.quantize_rows(random_array(rng, 2, 2, 10, 32), groups=4)
    v8, v_scale = simdattn.quantize_rows(random_array(rng, 2, 2, 10, 16))
    scores = simdattn.qk_scores(q, k8, k_scale=k_scale)
    assert scores.dtype == np.float32 and scores.shape == (2, 4, 6, 10)
    q64, k64, v64 = widen(q), widen(k8, k_scale), widen(v8, v_scale)
    expected_scores = np.einsum("bhid,bhjd->bhij", q64, np.repeat(k64, 2, axis=1)) / np.sqrt(32)
    logits = float(np.max(np.abs(expected_scores)))
    # README: qk_scores within (γ(D + 1) + u)·L, and 2u·L more for the int8 widening.
    score_bound = (34 * UNIT_ROUNDOFF + 3 * UNIT_ROUNDOFF) * logits * 2 + 1e-7
    assert_close(scores, expected_scores, score_bound, "qk_scores int8")
    assert_close(simdattn.reference.qk_scores(q, k8, k_scale=k_scale), expected_scores,
                 score_bound, "reference qk_scores int8")
    weights = simdattn.softmax_rows(scores)
    out = simdattn.weights_v(weights, v8, v_scale=v_scale, out_dtype="float16")
    assert out.dtype == np.float16
    expected, _, _ = oracle_attention(q64, k64, v64)
    assert_close(out, expected, stored_tolerance(q64, k64, v64, int8_cache=True,
                                                 out_dtype="float16"), "stages int8")
    reference = simdattn.reference.weights_v(weights, v8, v_scale=v_scale)
    assert reference.dtype == np.float32
    assert_close(reference, expected, stored_tolerance(q64, k64, v64, int8_cache=True),
                 "reference weights_v int8")


def test_scales_follow_the_bshd_layout(rng):
    q = random_array(rng, 2, 5, 4, 16)                   # [B, S, H, D]
    k8, k_scale = simdattn.quantize_rows(random_array(rng, 2, 7, 2, 16), groups=2)
    assert k_scale.shape == (2, 7, 2, 2)
    out = simdattn.attention(q, k8, k8, k_scale=k_scale, v_scale=k_scale, layout="bshd")
    bhsd = simdattn.attention(q.transpose(0, 2, 1, 3), k8.transpose(0, 2, 1, 3),
                              k8.transpose(0, 2, 1, 3), k_scale=k_scale.transpose(0, 2, 1, 3),
                              v_scale=k_scale.transpose(0, 2, 1, 3))
    assert_close(out.transpose(0, 2, 1, 3), bhsd, 0.0, "bshd scales")


# --- no copies ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float16", "int8"])
def test_16_and_8_bit_arrays_reach_the_library_in_place(dtype, rng):
    buffer = (random_array(rng, 2, 9, 3, 4, 16) * 100).astype(dtype)
    view = buffer[:, 1:, 1]
    assert _simdattn.data_address(view) == view.ctypes.data
    # out interleaved with q in one float16 buffer: only an in-place q overlaps out.
    packed = random_array(rng, 1, 8, 2, 2, 16).astype(np.float16)
    q, out = packed[:, :, 0], packed[:, :, 1]
    k = random_array(rng, 1, 8, 2, 16).astype(np.float16)
    with pytest.raises(ValueError, match=r"out must not overlap q"):
        simdattn.attention(q, k, k, out=out, layout="bshd")


def test_a_16_bit_out_is_written_in_place(rng):
    q = random_array(rng, 2, 3, 5, 8)
    out_buffer = np.full((2, 5, 3, 8), np.nan, dtype=np.float16)
    out = out_buffer.transpose(0, 2, 1, 3)
    assert simdattn.attention(q, q, q, out=out) is out
    assert np.all(np.isfinite(out_buffer))
    assert np.array_equal(out, simdattn.attention(q, q, q).astype(np.float16))


# --- errors --------------------------------------------------------------------------------------

def bad_call_cases(rng):
    q = random_array(rng, 1, 2, 3, 16)
    k8, scales = simdattn.quantize_rows(random_array(rng, 1, 2, 5, 16))
    k16 = random_array(rng, 1, 2, 5, 16).astype(np.float16)
    negative, nan, inf = scales.copy(), scales.copy(), scales.copy()
    negative[0, 1, 2, 0] = -0.5
    nan[0, 0, 4, 0] = np.nan
    inf[0, 0, 0, 0] = np.inf
    return {
        "int8 q": (ValueError, r"simdattn::attention: q.dtype must be f32, bf16 or f16, got i8",
                   dict(q=k8, k=k8, v=k8, k_scale=scales, v_scale=scales)),
        "k and v dtypes differ": (ValueError, r"v.dtype must equal k.dtype = f16 \(one cache dtype\), got f32",
                                  dict(q=q, k=k16, v=q[:, :, :3].copy())),
        "int8 without scales": (ValueError, r"options.k_scale .*required.*|options.k_scale.*got none",
                                dict(q=q, k=k8, v=k8)),
        "scales for a float cache": (ValueError, r"options.k_scale must be absent unless k.dtype is i8",
                                     dict(q=q, k=k16, v=k16, k_scale=scales)),
        "wrong-shaped scales": (ValueError, r"options.k_scale.shape\[2\] .* must equal k.shape\[2\] = 5, got 4",
                                dict(q=q, k=k8, v=k8, k_scale=scales[:, :, :4], v_scale=scales)),
        "groups that do not divide": (ValueError, r"options.v_scale.shape\[3\] .* must divide .* = 16 .* got 3",
                                      dict(q=q, k=k8, v=k8, k_scale=scales,
                                           v_scale=np.ones((1, 2, 5, 3), np.float32))),
        "negative scale": (ValueError, r"options.k_scale\[0, 1, 2, 0\] must be finite and >= 0, got -0.5",
                           dict(q=q, k=k8, v=k8, k_scale=negative, v_scale=scales)),
        "NaN scale": (ValueError, r"options.v_scale\[0, 0, 4, 0\] must be finite and >= 0, got nan",
                      dict(q=q, k=k8, v=k8, k_scale=scales, v_scale=nan)),
        "infinite scale": (ValueError, r"options.k_scale\[0, 0, 0, 0\] must be finite and >= 0, got inf",
                           dict(q=q, k=k8, v=k8, k_scale=inf, v_scale=scales)),
        "float16 scales": (TypeError, r"simdattn.attention: k_scale must have dtype float32, got float16",
                           dict(q=q, k=k8, v=k8, k_scale=scales.astype(np.float16), v_scale=scales)),
        "float64 k": (TypeError, r"k must have dtype float32, bfloat16, float16 or int8, got float64",
                      dict(q=q, k=q.astype(np.float64), v=q.astype(np.float64))),
    }


CASE_NAMES = list(bad_call_cases(np.random.default_rng(0)))


@pytest.mark.parametrize("case", CASE_NAMES)
@pytest.mark.parametrize("out_dtype", ["float32", "float16"])
def test_bad_dtypes_and_scales_raise_the_librarys_message_and_write_nothing(case, out_dtype, rng):
    error, message, arguments = bad_call_cases(rng)[case]
    q = arguments.pop("q")
    out = np.full(q.shape[:3] + (arguments["v"].shape[3],), 7.0, out_dtype)
    with pytest.raises(error, match=message):
        simdattn.attention(q, out=out, **arguments)
    assert np.all(out == 7.0), f"{case}: out was written"
    reference_message = message.replace("simdattn::attention", "simdattn::reference::attention")
    reference_message = reference_message.replace("simdattn.attention", "simdattn.reference.attention")
    with pytest.raises(error, match=reference_message):
        simdattn.reference.attention(q, out=out, **arguments)
    assert np.all(out == 7.0), f"{case}: the reference wrote out"


def test_result_dtype_requests_are_checked():
    q = np.zeros((1, 1, 2, 4), np.float32)
    with pytest.raises(TypeError, match=r"out_dtype bfloat16 needs PyTorch tensors"):
        simdattn.attention(q, q, q, out_dtype="bfloat16")
    with pytest.raises(TypeError, match=r"out_dtype must be float32, bfloat16 or float16, got int8"):
        simdattn.attention(q, q, q, out_dtype=np.int8)
    with pytest.raises(ValueError, match=r"give out or out_dtype, not both"):
        simdattn.attention(q, q, q, out=np.zeros_like(q), out_dtype=np.float16)
    with pytest.raises(ValueError, match=r"out.dtype must be f32, bf16 or f16, got i8"):
        simdattn.attention(q, q, q, out=np.zeros(q.shape, np.int8))
    assert simdattn.attention(q, q, q, out_dtype=np.float16).dtype == np.float16
    assert simdattn.attention(q, q, q, out_dtype=np.dtype("float16")).dtype == np.float16


# --- convert -------------------------------------------------------------------------------------

def test_convert_rounds_to_nearest_even_and_widens_exactly(rng):
    source = random_array(rng, 2, 3, 5, 40, low=-70000, high=70000)   # some overflow float16
    source[0, 0, 0, :4] = [np.inf, -np.inf, np.nan, 0.0]
    source[0, 0, 1, :3] = [1e-6, -3e-8, 6.1e-5]                         # float16 subnormals
    half = simdattn.convert(source, dtype="float16")
    assert half.dtype == np.float16 and half.shape == source.shape
    with np.errstate(over="ignore"):
        expected = source.astype(np.float16)         # NumPy rounds to nearest even too
    assert np.array_equal(half, expected, equal_nan=True)
    back = simdattn.convert(half, np.empty_like(source))
    assert np.array_equal(back, half.astype(np.float32), equal_nan=True)


def test_convert_reads_and_writes_strided_views(rng):
    source = random_array(rng, 4, 6, 32)[:, ::2]
    destination_buffer = np.zeros((4, 3, 2, 32), np.float16)
    destination = destination_buffer[:, :, 1]
    assert simdattn.convert(source, destination) is destination
    assert np.array_equal(destination, source.astype(np.float16))
    assert np.all(destination_buffer[:, :, 0] == 0)


def test_convert_errors():
    source = np.zeros((2, 8), np.float32)
    with pytest.raises(ValueError, match=r"destination.dtype must be f32, bf16 or f16, got i8"):
        simdattn.convert(source, np.zeros((2, 8), np.int8))
    with pytest.raises(ValueError, match=r"destination must have 2 dimensions \(as source\), got 3"):
        simdattn.convert(source, np.zeros((1, 2, 8), np.float16))
    with pytest.raises(ValueError, match=r"shape"):
        simdattn.convert(source, np.zeros((2, 4), np.float16))
    with pytest.raises(ValueError, match=r"give destination or dtype"):
        simdattn.convert(source)
    with pytest.raises(ValueError, match=r"overlap"):
        simdattn.convert(source, source)


# --- quantize_rows ---------------------------------------------------------------------------------

@pytest.mark.parametrize("groups", [1, 4])
@pytest.mark.parametrize("source_dtype", ["float32", "float16"])
def test_quantize_rows_round_trip(groups, source_dtype, rng):
    source = random_array(rng, 2, 3, 7, 32, low=-5, high=5).astype(source_dtype)
    source[1, 2, 3] = 0.0                                          # an all-zero row
    destination, scales = simdattn.quantize_rows(source, groups=groups)
    assert destination.dtype == np.int8 and destination.shape == source.shape
    assert scales.dtype == np.float32 and scales.shape == (2, 3, 7, groups)
    x = widen(source).reshape(2, 3, 7, groups, 32 // groups)
    expected_scales = np.abs(x).max(axis=-1) / 127.0
    assert_close(scales, expected_scales, 2 * UNIT_ROUNDOFF * expected_scales.max(), "scales")
    assert np.all(scales[1, 2, 3] == 0) and np.all(destination[1, 2, 3] == 0)
    assert np.abs(destination.astype(np.int32)).max() <= 127
    # scale · int8 is within scale / 2 of x, plus the float32 roundings of x / scale.
    restored = widen(destination, scales).reshape(x.shape)
    slack = np.asarray(scales, np.float64)[..., None] * (0.5 + 4 * 127 * UNIT_ROUNDOFF)
    assert np.all(np.abs(restored - x) <= slack), float(np.max(np.abs(restored - x) - slack))


def test_quantize_rows_writes_given_arrays_and_checks_them(rng):
    source = random_array(rng, 3, 16)
    destination = np.zeros((3, 16), np.int8)
    scales = np.zeros((3, 2), np.float32)
    result = simdattn.quantize_rows(source, destination, scales)
    assert result[0] is destination and result[1] is scales and np.any(destination != 0)
    with pytest.raises(ValueError, match=r"scales.shape\[3\] \(groups per row\) must divide "
                                         r"source.shape\[3\] = 16 .* an array of 2 dimensions is "
                                         r"padded on the left with 2 of size 1"):
        simdattn.quantize_rows(source, groups=3)
    with pytest.raises(TypeError, match=r"destination must have dtype int8, got float32"):
        simdattn.quantize_rows(source, np.zeros((3, 16), np.float32))
    with pytest.raises(ValueError, match=r"scales must have 2 dimensions \(as source\), got 1"):
        simdattn.quantize_rows(source, scales=np.zeros(3, np.float32))
    source[1, 5] = np.nan
    with pytest.raises(ValueError, match=r"finite"):
        simdattn.quantize_rows(source, destination, scales)


# --- merge_attention_states -----------------------------------------------------------------------

@pytest.mark.parametrize("state_dtype", ["float32", "float16"])
@pytest.mark.parametrize("layout", ["bhsd", "bshd"])
def test_merging_states_over_key_chunks_is_attention_over_all_keys(state_dtype, layout, rng):
    q = random_array(rng, 2, 4, 5, 16).astype(state_dtype)
    k = random_array(rng, 2, 2, 23, 16).astype(state_dtype)
    v = random_array(rng, 2, 2, 23, 8).astype(state_dtype)
    if layout == "bshd":
        q, k, v = (x.transpose(0, 2, 1, 3) for x in (q, k, v))
    seq_axis = 2 if layout == "bhsd" else 1
    chunks = [slice(0, 7), slice(7, 8), slice(8, 23)]
    outs, lses = [], []
    for chunk in chunks:
        index = [slice(None)] * 4
        index[seq_axis] = chunk
        out, lse = simdattn.attention(q, k[tuple(index)], v[tuple(index)], return_lse=True,
                                      layout=layout)
        outs.append(out)
        lses.append(lse)
    merged, merged_lse = simdattn.merge_attention_states(outs, lses, return_lse=True,
                                                         layout=layout)
    assert merged.dtype == state_dtype and merged_lse.shape == (2, 4, 5)
    bhsd = (lambda x: x) if layout == "bhsd" else (lambda x: x.transpose(0, 2, 1, 3))
    q64, k64, v64 = (widen(bhsd(x)) for x in (q, k, v))
    expected, expected_lse, _ = oracle_attention(q64, k64, v64)
    # Each state within the bound of its chunk (and rounded to the state's dtype); the merge
    # adds a float32 weighted mean of at most 3 states and one more rounding.
    bound = stored_tolerance(q64, k64, v64, out_dtype=state_dtype)
    merge_bound = 2 * bound + 8 * UNIT_ROUNDOFF
    assert_close(bhsd(merged), expected, merge_bound, f"merged {state_dtype} {layout}")
    assert_close(merged_lse, expected_lse, 4 * merge_bound + 1e-6, "merged lse")
    reference, reference_lse = simdattn.reference.merge_attention_states(
        outs, lses, return_lse=True, layout=layout, out_dtype="float32")
    assert reference.dtype == np.float32
    assert_close(bhsd(reference), expected, merge_bound, "reference merge")


def test_merge_gives_empty_states_no_weight(rng):
    out = random_array(rng, 1, 2, 3, 4)
    lse = random_array(rng, 1, 2, 3)
    empty_out = np.full_like(out, 123.0)
    empty_lse = np.full_like(lse, -np.inf)
    merged = simdattn.merge_attention_states([empty_out, out], [empty_lse, lse])
    assert_close(merged, out, 4 * UNIT_ROUNDOFF, "one real state")
    nothing = simdattn.merge_attention_states([empty_out], [empty_lse])
    assert np.all(nothing == 0)


def test_merge_errors(rng):
    out = random_array(rng, 1, 2, 3, 4)
    lse = random_array(rng, 1, 2, 3)
    with pytest.raises(ValueError, match=r"lses must have one entry per state, 2 \(as outs\), got 1"):
        simdattn.merge_attention_states([out, out], [lse])
    with pytest.raises(ValueError, match=r"lses\[0\] must have 3 dimensions"):
        simdattn.merge_attention_states([out], [out])
    with pytest.raises(ValueError, match=r"outs\[1\].shape\[2\] .* must equal out.shape\[2\] = 3, got 2"):
        simdattn.merge_attention_states([out, out[:, :, :2]], [lse, lse])
    with pytest.raises(ValueError, match=r"outs must hold at least one state"):
        simdattn.merge_attention_states([], [])
    with pytest.raises(TypeError, match=r"lses\[0\] must have dtype float32, got float16"):
        simdattn.merge_attention_states([out], [lse.astype(np.float16)])
