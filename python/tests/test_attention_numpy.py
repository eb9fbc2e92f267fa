"""simdattn.attention and its stages on NumPy arrays, against the NumPy float64 oracle and the
library's reference oracle, over options, layouts and strided views."""
from __future__ import annotations

import numpy as np
import pytest

import simdattn
from conftest import assert_close, oracle_attention, random_array, tolerance

# Uneven shapes around tile edges, GQA and MQA, Sq != Sk: (B, Hq, Hkv, Sq, Sk, D, Dv).
SHAPES = [
    (1, 1, 1, 1, 1, 1, 1),
    (2, 4, 2, 7, 13, 16, 8),
    (1, 8, 1, 33, 65, 64, 64),
    (3, 6, 3, 17, 17, 80, 96),
    (1, 2, 2, 129, 37, 32, 16),
]

OPTION_SETS = [
    dict(),
    dict(causal="bottom_right"),
    dict(causal="top_left"),
    dict(causal="bottom_right", window=(5, 0)),
    dict(window=(3, 2)),
    dict(scale=0.37, softcap=2.5),
    dict(alibi_slopes="per-head"),
    dict(kv_lengths="per-batch", causal="bottom_right"),
    dict(mask="additive"),
]


def concrete_options(options, rng, batch, q_heads, queries, keys):
    options = dict(options)
    if options.get("alibi_slopes") == "per-head":
        options["alibi_slopes"] = [0.5 ** (h + 1) for h in range(q_heads)]
    if options.get("kv_lengths") == "per-batch":
        options["kv_lengths"] = [int(x) for x in rng.integers(0, keys + 1, size=batch)]
    if options.get("mask") == "additive":
        mask = random_array(rng, batch, 1, queries, keys, low=-3.0, high=3.0)
        mask[rng.uniform(size=mask.shape) < 0.2] = -np.inf
        options["mask"] = mask
    return options


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}Hq{}Hkv{}Sq{}Sk{}D{}Dv{}".format(*s))
@pytest.mark.parametrize("options", OPTION_SETS, ids=lambda o: "-".join(o) or "plain")
@pytest.mark.parametrize("algorithm", ["auto", "composed", "fused"])
def test_attention_matches_the_oracles(shape, options, algorithm, rng):
    batch, q_heads, kv_heads, queries, keys, head_dim, value_dim = shape
    q = random_array(rng, batch, q_heads, queries, head_dim, low=-2, high=2)
    k = random_array(rng, batch, kv_heads, keys, head_dim, low=-2, high=2)
    v = random_array(rng, batch, kv_heads, keys, value_dim)
    options = concrete_options(options, rng, batch, q_heads, queries, keys)
    out, lse = simdattn.attention(q, k, v, return_lse=True, algorithm=algorithm, **options)
    expected_out, expected_lse, _ = oracle_attention(q, k, v, **options)
    bound = tolerance(q, k, v, options.get("scale"))
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    assert_close(out, expected_out, bound, f"out {shape} {algorithm}")
    assert_close(lse, expected_lse, bound * 4, f"lse {shape} {algorithm}")
    reference_out = simdattn.reference.attention(q, k, v, **options)
    assert_close(out, reference_out, bound, f"out vs reference {shape} {algorithm}")


def test_weights_are_returned_with_lse_in_order(rng):
    q = random_array(rng, 2, 3, 5, 8)
    k = random_array(rng, 2, 3, 6, 8)
    v = random_array(rng, 2, 3, 6, 4)
    out, lse, weights = simdattn.attention(q, k, v, return_lse=True, return_weights=True,
                                           causal="bottom_right")
    expected_out, expected_lse, expected_weights = oracle_attention(q, k, v, causal="bottom_right")
    bound = tolerance(q, k, v)
    assert lse.shape == (2, 3, 5) and weights.shape == (2, 3, 5, 6)
    assert_close(weights, expected_weights, bound, "weights")
    assert_close(out, expected_out, bound, "out")
    out2, weights2 = simdattn.attention(q, k, v, return_weights=True, causal="bottom_right")
    assert_close(weights2, weights, 0.0, "weights without lse")


def test_bshd_layout_reads_projections_in_place(rng):
    batch, seq, heads, head_dim = 2, 11, 4, 16
    q = random_array(rng, batch, seq, heads, head_dim)
    k = random_array(rng, batch, seq, 2, head_dim)
    v = random_array(rng, batch, seq, 2, head_dim)
    out = simdattn.attention(q, k, v, layout="bshd", causal="bottom_right")
    assert out.shape == (batch, seq, heads, head_dim)
    expected, _, _ = oracle_attention(q.transpose(0, 2, 1, 3), k.transpose(0, 2, 1, 3),
                                      v.transpose(0, 2, 1, 3), causal="bottom_right")
    assert_close(out.transpose(0, 2, 1, 3), expected, tolerance(q, k, v), "bshd out")
    # The same arrays seen as BHSD through transposed views: the same numbers.
    out_views = simdattn.attention(q.transpose(0, 2, 1, 3), k.transpose(0, 2, 1, 3),
                                   v.transpose(0, 2, 1, 3), causal="bottom_right")
    assert_close(out_views, out.transpose(0, 2, 1, 3), 0.0, "bshd vs transposed views")


def test_strided_slices_of_a_packed_qkv_buffer(rng):
    # One [B, S, 3, H, D] buffer as projections produce it; q, k and v are slices of it.
    batch, seq, heads, head_dim = 2, 9, 3, 24
    qkv = random_array(rng, batch, seq, 3, heads, head_dim)
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    out = simdattn.attention(q, k, v, layout="bshd")
    expected, _, _ = oracle_attention(*(x.transpose(0, 2, 1, 3) for x in (q, k, v)))
    assert_close(out.transpose(0, 2, 1, 3), expected, tolerance(q, k, v), "packed qkv")
    # Every other head, every other query: non-unit strides in the first three dimensions.
    q2 = random_array(rng, 2, 8, 10, 16)[:, ::2, ::3]
    k2 = random_array(rng, 2, 4, 7, 16)[:, ::1, ::2]
    v2 = random_array(rng, 2, 4, 7, 16)[:, :, ::2]
    out2 = simdattn.attention(q2, k2, v2)
    assert_close(out2, oracle_attention(q2, k2, v2)[0], tolerance(q2, k2, v2), "sliced views")


def test_broadcast_mask_with_zero_strides(rng):
    q = random_array(rng, 2, 4, 6, 8)
    k = random_array(rng, 2, 4, 9, 8)
    v = random_array(rng, 2, 4, 9, 8)
    row = random_array(rng, 9, low=-2, high=2)
    mask = np.broadcast_to(row, (2, 4, 6, 9))      # read-only, strides (0, 0, 0, 4)
    assert mask.strides[:3] == (0, 0, 0)
    out = simdattn.attention(q, k, v, mask=mask)
    assert_close(out, oracle_attention(q, k, v, mask=mask)[0], tolerance(q, k, v), "broadcast")
    out_2d = simdattn.attention(q, k, v, mask=np.broadcast_to(row, (6, 9)))
    assert_close(out_2d, out, 0.0, "2-D mask broadcasts like 4-D")


def test_stages_compose_to_attention(rng):
    q = random_array(rng, 2, 4, 7, 16)
    k = random_array(rng, 2, 2, 10, 16)
    v = random_array(rng, 2, 2, 10, 12)
    scores = simdattn.qk_scores(q, k)
    assert scores.shape == (2, 4, 7, 10)
    expected_scores = np.einsum("bhid,bhjd->bhij", q.astype(np.float64),
                                np.repeat(k, 2, axis=1).astype(np.float64)) / 4.0
    assert_close(scores, expected_scores, 4 * 16 * 4 * np.finfo(np.float32).eps, "qk_scores")
    assert_close(simdattn.reference.qk_scores(q, k), expected_scores, 1e-6, "reference qk_scores")
    weights = simdattn.softmax_rows(scores.copy())
    reference_weights = simdattn.reference.softmax_rows(scores.copy())
    expected_weights = oracle_attention(q, k, v)[2]
    assert_close(weights, expected_weights, tolerance(q, k, v), "softmax_rows")
    assert_close(reference_weights, expected_weights, tolerance(q, k, v), "reference softmax")
    out = simdattn.weights_v(weights, v)
    assert_close(out, oracle_attention(q, k, v)[0], tolerance(q, k, v), "weights_v")
    assert_close(simdattn.reference.weights_v(weights, v), out, tolerance(q, k, v),
                 "reference weights_v")
    out_bshd = simdattn.weights_v(weights, v.transpose(0, 2, 1, 3).copy(), layout="bshd")
    assert_close(out_bshd.transpose(0, 2, 1, 3), out, 0.0, "weights_v bshd")


def test_softmax_rows_is_in_place_and_survives_overflow_prone_rows(rng):
    scores = rng.uniform(90.0, 100.0, size=(3, 17)).astype(np.float32)  # exp(x) overflows
    scores[1] = -np.inf
    scores[2, ::2] = -np.inf
    result = simdattn.softmax_rows(scores)
    assert result is scores
    assert np.all(np.isfinite(scores))
    assert_close(scores[1], np.zeros(17), 0.0, "all -inf row")
    assert_close(scores.sum(axis=1), [1.0, 0.0, 1.0], 1e-5, "row sums")


def test_single_vector_oracles():
    assert simdattn.reference.dot_product([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]) == 32.0
    weights = simdattn.reference.softmax([1000.0, 1000.0])
    assert weights == [0.5, 0.5]
    assert np.isnan(simdattn.reference.softmax_naive([1000.0, 1000.0])).all()
    assert simdattn.reference.weighted_sum([0.25, 0.75], [[4.0, 8.0], [0.0, 4.0]]) == [1.0, 5.0]
    out = simdattn.reference.single_query_attention([1.0, 0.0], [[1.0, 0.0], [0.0, 1.0]],
                                                    [[1.0], [0.0]], scale=1.0)
    assert out[0] == pytest.approx(np.e / (np.e + 1.0), rel=1e-15)
    with pytest.raises(ValueError, match="length|size|equal"):
        simdattn.reference.dot_product([1.0], [1.0, 2.0])


def test_empty_shapes_are_fine():
    q = np.zeros((2, 3, 0, 8), np.float32)
    k = np.zeros((2, 3, 5, 8), np.float32)
    assert simdattn.attention(q, k, k).shape == (2, 3, 0, 8)
    q = np.ones((1, 1, 2, 4), np.float32)
    k = np.zeros((1, 1, 0, 4), np.float32)
    out, lse = simdattn.attention(q, k, k, return_lse=True)
    assert np.all(out == 0) and np.all(lse == -np.inf)


def test_threads_do_not_change_the_bits(rng):
    q = random_array(rng, 2, 8, 70, 64)
    k = random_array(rng, 2, 8, 90, 64)
    v = random_array(rng, 2, 8, 90, 64)
    one = simdattn.attention(q, k, v, num_threads=1, causal="bottom_right")
    two = simdattn.attention(q, k, v, num_threads=2, causal="bottom_right")
    assert np.array_equal(one, two)


def test_package_metadata():
    import pathlib
    import re

    assert re.fullmatch(r"\d+\.\d+\.\d+", simdattn.__version__)
    assert simdattn.active_isa() in ("sse2", "avx2", "avx512", "avx512bf16", "amx")
    package = pathlib.Path(simdattn.__file__).parent
    assert (package / "py.typed").exists(), "py.typed marker missing from the package"
    stub = package / "_simdattn.pyi"
    assert stub.exists(), "the compiled module's stub _simdattn.pyi is missing"
    stub_text = stub.read_text()
    for name in ("attention", "convert", "quantize_rows", "merge_attention_states"):
        assert f"def {name}(" in stub_text, f"{name} missing from _simdattn.pyi"
    assert "k_scale" in stub_text and "v_scale" in stub_text
    assert "sinks" in stub_text and "sink_tokens" in stub_text
    for function in (simdattn.attention, simdattn.qk_scores, simdattn.softmax_rows,
                     simdattn.weights_v, simdattn.merge_attention_states, simdattn.convert,
                     simdattn.quantize_rows, simdattn.reference.attention,
                     simdattn.reference.merge_attention_states):
        assert function.__doc__ and len(function.__doc__) > 40, function.__name__
