"""bfloat16 and float16 tensors (and int8 caches) in simdattn.attention and simdattn.torch:
every dtype combination against the float64 oracle of the stored values, torch's own SDPA in
16 bits, no copies (DLPack for bfloat16), the custom op's fake implementation and route_sdpa()."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import simdattn  # noqa: E402
import simdattn.torch as simdattn_torch  # noqa: E402
from simdattn import _arrays, _simdattn  # noqa: E402
from conftest import (UNIT_ROUNDOFF_16, assert_close, oracle_attention,  # noqa: E402
                      stored_tolerance, widen)
from conftest import torch_uniform as uniform  # noqa: E402

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(20261205)


def cache_of(kind, k, v, groups=1):
    """k, v (float32) stored as `kind`, with scales for int8."""
    if kind != "int8":
        return k.to(DTYPES[kind]), v.to(DTYPES[kind]), None, None
    k8, k_scale = simdattn.quantize_rows(k, groups=groups)
    v8, v_scale = simdattn.quantize_rows(v, groups=groups)
    return k8, v8, k_scale, v_scale


@pytest.mark.parametrize("q_dtype", ["float32", "bfloat16", "float16"])
@pytest.mark.parametrize("cache", ["float32", "bfloat16", "float16", "int8"])
@pytest.mark.parametrize("out_dtype", [None, "float32", "bfloat16", "float16"])
@pytest.mark.parametrize("algorithm", ["composed", "fused"])
def test_every_dtype_combination_matches_the_oracle(q_dtype, cache, out_dtype, algorithm,
                                                    generator):
    q = uniform(2, 4, 9, 48, generator=generator, low=-2, high=2, dtype=DTYPES[q_dtype])
    k, v, k_scale, v_scale = cache_of(cache, uniform(2, 2, 21, 48, generator=generator, low=-2,
                                                     high=2),
                                      uniform(2, 2, 21, 24, generator=generator), groups=2)
    out = simdattn.attention(q, k, v, k_scale=k_scale, v_scale=v_scale, causal="bottom_right",
                             out_dtype=None if out_dtype is None else DTYPES[out_dtype],
                             algorithm=algorithm, window=(6, None))
    expected_dtype = out_dtype or q_dtype
    assert isinstance(out, torch.Tensor) and out.dtype == DTYPES[expected_dtype]
    q64, k64, v64 = widen(q), widen(k, k_scale), widen(v, v_scale)
    expected, _, _ = oracle_attention(q64, k64, v64, causal="bottom_right", window=(6, -1))
    bound = stored_tolerance(q64, k64, v64, int8_cache=cache == "int8", out_dtype=expected_dtype)
    what = f"q {q_dtype} cache {cache} out {expected_dtype} {algorithm}"
    assert_close(widen(out), expected, bound, what)
    reference = simdattn.reference.attention(q, k, v, k_scale=k_scale, v_scale=v_scale,
                                             causal="bottom_right", window=(6, None),
                                             out_dtype=out_dtype)
    assert reference.dtype == DTYPES[expected_dtype]
    assert_close(widen(reference), expected, bound, f"reference {what}")


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_a_16_bit_out_tensor_and_bfloat16_masks(dtype, generator):
    q = uniform(1, 3, 8, 16, generator=generator, dtype=torch.bfloat16)
    k = uniform(1, 3, 10, 16, generator=generator, dtype=torch.bfloat16)
    mask = uniform(1, 1, 8, 10, generator=generator, low=-2, high=2, dtype=torch.bfloat16)
    mask[0, 0, 3, ::2] = float("-inf")
    out = torch.full((1, 3, 8, 16), float("nan"), dtype=DTYPES[dtype])
    assert simdattn.attention(q, k, k, mask=mask, out=out) is out
    q64, k64, mask64 = widen(q), widen(k), widen(mask)
    expected, _, _ = oracle_attention(q64, k64, k64, mask=mask64)
    assert_close(widen(out), expected,
                 stored_tolerance(q64, k64, k64, mask=mask64, out_dtype=dtype), "out= tensor")


def test_bfloat16_tensors_reach_the_library_in_place(generator):
    qkv = uniform(2, 10, 3, 4, 16, generator=generator, dtype=torch.bfloat16)
    q, k, v = qkv.unbind(2)                                    # strided views of one buffer
    for tensor in (q, k, v, qkv.requires_grad_(False)):
        core = _arrays.for_core(tensor, "torch")
        assert _simdattn.data_address(core) == tensor.data_ptr()
    out = torch.empty(2, 10, 4, 16, dtype=torch.bfloat16)
    assert simdattn.attention(q, k, v, layout="bshd", out=out).data_ptr() == out.data_ptr()
    # An out interleaved with q is an overlap only if the library sees q's own memory.
    with pytest.raises(ValueError, match="out must not overlap q"):
        simdattn.attention(q, k, v, layout="bshd", out=qkv[:, :, 2])
    grad = uniform(1, 2, 5, 8, generator=generator, dtype=torch.bfloat16).requires_grad_()
    assert _simdattn.data_address(_arrays.for_core(grad, "torch")) == grad.data_ptr()


def test_int8_tensor_caches_and_their_scales_are_read_in_place(generator):
    k8, k_scale = simdattn.quantize_rows(uniform(1, 2, 6, 32, generator=generator), groups=4)
    for tensor in (k8, k_scale, k8[:, :, 1:]):
        assert _simdattn.data_address(_arrays.for_core(tensor, "torch")) == tensor.data_ptr()
    q = uniform(1, 4, 3, 32, generator=generator, dtype=torch.float16)
    with pytest.raises(ValueError, match=r"k_scale.shape\[2\] .* must equal k.shape\[2\] = 5, got 6"):
        simdattn.attention(q, k8[:, :, 1:], k8[:, :, 1:], k_scale=k_scale, v_scale=k_scale)


def test_bad_tensor_dtypes_carry_the_librarys_message_and_write_nothing(generator):
    q = uniform(1, 2, 3, 8, generator=generator, dtype=torch.bfloat16)
    k8, scales = simdattn.quantize_rows(uniform(1, 2, 4, 8, generator=generator))
    out = torch.full((1, 2, 3, 8), 7.0, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match=r"q.dtype must be f32, bf16 or f16, got i8"):
        simdattn.attention(k8[:, :, :3], k8, k8, k_scale=scales, v_scale=scales, out=out)
    with pytest.raises(ValueError, match=r"v.dtype must equal k.dtype = bf16 .* got f16"):
        simdattn.attention(q, q, q.to(torch.float16), out=out)
    with pytest.raises(ValueError, match=r"options.v_scale must be given when v.dtype is i8|v_scale.*got none"):
        simdattn.attention(q, k8, k8, k_scale=scales, out=out)
    with pytest.raises(TypeError, match=r"q must have dtype float32, bfloat16, float16 or int8, got float64"):
        simdattn.attention(q.double(), q, q, out=out)
    with pytest.raises(TypeError, match=r"k_scale must be of the same kind as q \(torch\), got numpy"):
        simdattn.attention(q, k8, k8, k_scale=scales.numpy(), v_scale=scales)
    assert torch.all(out == 7.0)


def test_convert_to_bfloat16_matches_torchs_rounding(generator):
    source = uniform(3, 5, 64, generator=generator, low=-1e5, high=1e5)
    source[0, 0, :3] = torch.tensor([float("inf"), float("nan"), 3.0e38])
    for name in ("bfloat16", "float16"):
        converted = simdattn.convert(source, dtype=DTYPES[name])
        expected = source.to(DTYPES[name])                     # torch rounds to nearest even
        assert converted.dtype == DTYPES[name]
        assert torch.equal(converted.isnan(), expected.isnan())
        same = (converted == expected) | (converted.isnan() & expected.isnan())
        assert bool(same.all()), name
        back = simdattn.convert(converted, torch.empty(3, 5, 64))
        assert torch.equal(back.isnan(), converted.isnan())
        assert bool(((back == converted.float()) | back.isnan()).all())


def test_merge_of_bfloat16_states(generator):
    q = uniform(1, 2, 4, 16, generator=generator, dtype=torch.bfloat16)
    k = uniform(1, 2, 12, 16, generator=generator, dtype=torch.bfloat16)
    first = simdattn.attention(q, k[:, :, :5], k[:, :, :5], return_lse=True)
    second = simdattn.attention(q, k[:, :, 5:], k[:, :, 5:], return_lse=True)
    merged = simdattn.merge_attention_states([first[0], second[0]], [first[1], second[1]])
    assert merged.dtype == torch.bfloat16
    q64, k64 = widen(q), widen(k)
    expected, _, _ = oracle_attention(q64, k64, k64)
    bound = 2 * stored_tolerance(q64, k64, k64, out_dtype="bfloat16")
    assert_close(widen(merged), expected, bound, "merged bfloat16")


# --- simdattn.torch in 16 bits ---------------------------------------------------------------------

SDPA_CASES = {
    "plain": dict(),
    "causal": dict(is_causal=True, queries=7),
    "bool-mask": dict(mask="bool"),
    "float-mask-of-query-dtype": dict(mask="query-dtype"),
    "float32-mask": dict(mask="float32"),
    "gqa": dict(gqa=True),
}


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("case", SDPA_CASES.values(), ids=SDPA_CASES.keys())
def test_sdpa_in_16_bits_matches_torch(dtype, case, generator):
    batch, heads, queries, keys, head_dim = 2, 4, case.get("queries", 11), 11, 32
    kv_heads = 2 if case.get("gqa") else heads
    cast = DTYPES[dtype]
    query = uniform(batch, heads, queries, head_dim, generator=generator, low=-2, high=2, dtype=cast)
    key = uniform(batch, kv_heads, keys, head_dim, generator=generator, low=-2, high=2, dtype=cast)
    value = uniform(batch, kv_heads, keys, 16, generator=generator, dtype=cast)
    mask = None
    if case.get("mask") == "bool":
        mask = torch.rand(queries, keys, generator=generator) > 0.3
    elif case.get("mask") in ("query-dtype", "float32"):
        mask = uniform(batch, 1, queries, keys, generator=generator, low=-2, high=2,
                       dtype=cast if case["mask"] == "query-dtype" else torch.float32)
    kwargs = dict(attn_mask=mask, is_causal=case.get("is_causal", False),
                  enable_gqa=bool(case.get("gqa")))
    expected = F.scaled_dot_product_attention(query, key, value, **kwargs)
    actual = simdattn_torch.scaled_dot_product_attention(query, key, value, **kwargs)
    assert actual.dtype == expected.dtype == cast and actual.shape == expected.shape
    # simdattn is within its bound of the exact result; torch's CPU kernels round the softmax
    # weights to the input dtype before multiplying by value (u₁₆ · V more) and round the
    # result once (u₁₆ · V): the two may differ by the sum of both.
    q64, k64, v64 = widen(query), widen(key), widen(value)
    if kv_heads != heads:
        k64, v64 = np.repeat(k64, heads // kv_heads, axis=1), np.repeat(v64, heads // kv_heads, axis=1)
    mask64 = None if mask is None or mask.dtype == torch.bool else widen(mask)
    ours = stored_tolerance(q64, k64, v64, mask=mask64, out_dtype=dtype)
    largest_value = float(np.max(np.abs(v64)))
    bound = ours + 2 * UNIT_ROUNDOFF_16[dtype] * largest_value + ours
    assert_close(widen(actual), widen(expected), bound, f"sdpa {dtype} {case}")


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_the_op_and_its_fake_give_the_right_dtype(dtype, generator):
    q = uniform(1, 4, 6, 8, generator=generator, dtype=DTYPES[dtype])
    k = uniform(1, 2, 7, 8, generator=generator, dtype=DTYPES[dtype])
    results = torch.library.opcheck(torch.ops.simdattn.attention.default, (q, k, k),
                                    {"causal": "bottom_right"},
                                    test_utils=("test_schema", "test_faketensor",
                                                "test_aot_dispatch_static"))
    assert all(result == "SUCCESS" for result in results.values()), results
    assert torch.ops.simdattn.attention(q, k, k).dtype == DTYPES[dtype]
    widened = torch.ops.simdattn.attention(q, k, k, out_dtype=torch.float32)
    assert widened.dtype == torch.float32
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode() as mode:
        fake_q, fake_k = mode.from_tensor(q), mode.from_tensor(k)
        assert torch.ops.simdattn.attention(fake_q, fake_k, fake_k).dtype == DTYPES[dtype]
        assert torch.ops.simdattn.attention(fake_q, fake_k, fake_k,
                                            out_dtype=torch.float32).dtype == torch.float32


def test_the_op_takes_an_int8_cache_with_scales(generator):
    q = uniform(1, 4, 3, 16, generator=generator, dtype=torch.bfloat16)
    k8, scales = simdattn.quantize_rows(uniform(1, 2, 9, 16, generator=generator), groups=2)
    out = torch.ops.simdattn.attention(q, k8, k8, k_scale=scales, v_scale=scales)
    assert out.dtype == torch.bfloat16
    q64, k64 = widen(q), widen(k8, scales)
    expected, _, _ = oracle_attention(q64, k64, k64)
    assert_close(widen(out), expected, stored_tolerance(q64, k64, k64, int8_cache=True,
                                                        out_dtype="bfloat16"), "op int8")


def test_sdpa_refuses_mixed_dtypes_as_torch_does(generator):
    q = uniform(1, 2, 3, 8, generator=generator, dtype=torch.bfloat16)
    with pytest.raises(TypeError, match=r"query, key and value must have one dtype .* got "
                                        r"torch.bfloat16, torch.float32 and torch.bfloat16"):
        simdattn_torch.scaled_dot_product_attention(q, q.float(), q)
    with pytest.raises(TypeError, match=r"attn_mask must have dtype torch.bool, torch.float32 or "
                                        r"the query's \(torch.bfloat16\), as in torch, got torch.float16"):
        simdattn_torch.scaled_dot_product_attention(q, q, q, attn_mask=torch.zeros(3, 3, dtype=torch.float16))


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_route_sdpa_routes_16_bit_models(dtype):
    torch.manual_seed(0)

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = torch.nn.Linear(32, 96)

        def forward(self, x):
            q, k, v = self.qkv(x).view(2, 10, 3, 4, 8).unbind(2)
            return F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                                  v.transpose(1, 2), is_causal=True)

    model = Block().to(DTYPES[dtype]).eval()
    x = torch.randn(2, 10, 32).to(DTYPES[dtype])
    with torch.no_grad():
        expected = model(x)
        with warnings.catch_warnings():
            warnings.simplefilter("error")                 # a fallback would be an error here
            with simdattn_torch.route_sdpa() as routing:
                actual = model(x)
    assert routing.routed_calls == 1 and routing.fallback_calls == 0
    assert actual.dtype == DTYPES[dtype]
    value = float(expected.abs().max())
    assert_close(widen(actual), widen(expected), 4 * UNIT_ROUNDOFF_16[dtype] * max(value, 1.0),
                 f"routed {dtype} model")
