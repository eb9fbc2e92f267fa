"""Attention sinks and sink tokens on PyTorch tensors: simdattn.attention, softmax_rows and the
custom op torch.ops.simdattn.attention (sinks=, sink_tokens=, under opcheck and torch.compile)
against the float64 oracle, in float32, bfloat16 and float16, with sinks as float32 and
bfloat16 tensors (a model's parameter); and the errors for bad sinks."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import simdattn  # noqa: E402
import simdattn.torch  # noqa: E402,F401  (registers torch.ops.simdattn.attention)
from conftest import (FLOAT32_EPSILON, assert_close, oracle_attention,  # noqa: E402
                      stored_tolerance, tolerance, widen)
from conftest import torch_uniform as uniform  # noqa: E402

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(20261205)


def lse_bound(bound, expected_lse):
    finite = np.abs(expected_lse[np.isfinite(expected_lse)])
    return 4 * bound + 4 * FLOAT32_EPSILON * (float(finite.max()) if finite.size else 0.0)


SINKS = torch.tensor([-float("inf"), 0.0, 1e4, -1e4, 1.5, -0.75, 3.0, 0.25])

# (B, Hq, Hkv, Sq, Sk, D, Dv): GQA prefill, and a decoding row over more keys than one decoding
# key chunk (1024), so that the fused path splits the keys.
SHAPES = [(2, 8, 2, 9, 21, 48, 24), (1, 8, 4, 1, 2100, 64, 32)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}Hq{}Hkv{}Sq{}Sk{}D{}Dv{}".format(*s))
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
@pytest.mark.parametrize("algorithm", ["composed", "fused"])
def test_sinks_and_sink_tokens_on_tensors_match_the_oracle(shape, dtype, algorithm, generator):
    batch, q_heads, kv_heads, queries, keys, head_dim, value_dim = shape
    q = uniform(batch, q_heads, queries, head_dim, generator=generator, low=-2, high=2,
                dtype=DTYPES[dtype])
    k = uniform(batch, kv_heads, keys, head_dim, generator=generator, low=-2, high=2,
                dtype=DTYPES[dtype])
    v = uniform(batch, kv_heads, keys, value_dim, generator=generator, dtype=DTYPES[dtype])
    options = dict(causal="bottom_right", window=(6, 0), sink_tokens=3)
    out, lse = simdattn.attention(q, k, v, sinks=SINKS, algorithm=algorithm, return_lse=True,
                                  **options)
    assert isinstance(out, torch.Tensor) and out.dtype == DTYPES[dtype]
    q64, k64, v64 = widen(q), widen(k), widen(v)
    expected, expected_lse, _ = oracle_attention(q64, k64, v64, sinks=SINKS.numpy(), **options)
    bound = stored_tolerance(q64, k64, v64, out_dtype=dtype)
    what = f"{shape} {dtype} {algorithm}"
    assert_close(widen(out), expected, bound, f"out {what}")
    assert_close(lse.numpy(), expected_lse, lse_bound(bound, expected_lse) + 1e-6, f"lse {what}")
    reference = simdattn.reference.attention(q, k, v, sinks=SINKS, **options)
    assert_close(widen(reference), expected, bound, f"reference {what}")
    # The custom op: the same call, the same bits.
    op_out = torch.ops.simdattn.attention(q, k, v, causal="bottom_right", window_left=6,
                                          window_right=0, algorithm=algorithm, sinks=SINKS,
                                          sink_tokens=3)
    assert op_out.dtype == out.dtype and torch.equal(op_out, out)


def test_sinks_may_be_a_bfloat16_parameter_that_records_gradients(generator):
    q = uniform(1, 4, 5, 16, generator=generator, dtype=torch.bfloat16)
    k = uniform(1, 2, 7, 16, generator=generator, dtype=torch.bfloat16)
    sinks = torch.nn.Parameter(torch.tensor([0.5, -1.0, 2.0, -float("inf")],
                                            dtype=torch.bfloat16))
    out = simdattn.attention(q, k, k, sinks=sinks)
    expected = simdattn.attention(q, k, k, sinks=sinks.detach().float().numpy().tolist())
    assert torch.equal(out, expected)
    with torch.no_grad():
        assert torch.equal(torch.ops.simdattn.attention(q, k, k, sinks=sinks), expected)


def test_softmax_rows_with_tensor_sinks(generator):
    scores = uniform(2, 8, 5, 33, generator=generator, low=-4, high=4)
    weights = simdattn.softmax_rows(scores.clone(), sinks=SINKS)
    extended = torch.cat([scores.double(), SINKS.double()[None, :, None, None].expand(2, 8, 5, 1)],
                         dim=-1)
    expected = torch.softmax(extended, dim=-1)[..., :-1]
    assert_close(weights.numpy(), expected.numpy(), 16 * FLOAT32_EPSILON, "softmax_rows sinks")
    reference = simdattn.reference.softmax_rows(scores.clone(), sinks=SINKS)
    assert_close(reference.numpy(), expected.numpy(), FLOAT32_EPSILON, "reference softmax_rows")


def test_the_op_with_sinks_passes_opcheck_and_compiles(generator):
    q = uniform(1, 4, 6, 8, generator=generator)
    k = uniform(1, 2, 7, 8, generator=generator)
    sinks = torch.tensor([0.0, 1.0, -float("inf"), -2.0])
    kwargs = {"causal": "bottom_right", "window_left": 2, "window_right": 0, "sinks": sinks,
              "sink_tokens": 1}
    results = torch.library.opcheck(torch.ops.simdattn.attention.default, (q, k, k), kwargs,
                                    test_utils=("test_schema", "test_faketensor",
                                                "test_aot_dispatch_static",
                                                "test_aot_dispatch_dynamic"))
    assert all(result == "SUCCESS" for result in results.values()), results

    def attend(q, k, v, sinks):
        return torch.ops.simdattn.attention(q, k, v, causal="bottom_right", window_left=2,
                                            window_right=0, sinks=sinks, sink_tokens=1)

    compiled = torch.compile(attend, backend="aot_eager", fullgraph=True)
    expected, _, _ = oracle_attention(q.numpy(), k.numpy(), k.numpy(), causal="bottom_right",
                                      window=(2, 0), sinks=sinks.numpy(), sink_tokens=1)
    bound = tolerance(q.numpy(), k.numpy(), k.numpy())
    assert_close(compiled(q, k, k, sinks).numpy(), expected, bound, "compiled op with sinks")
    assert_close(attend(q, k, k, sinks).numpy(), expected, bound, "op with sinks")


def test_bad_tensor_sinks_raise_naming_the_argument_and_write_nothing(generator):
    q = uniform(1, 4, 3, 8, generator=generator, dtype=torch.bfloat16)
    out = torch.full((1, 4, 3, 8), 7.0, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match=r"simdattn.attention: sinks must be a 1-D sequence of 4 "
                                         r"entries, got shape \(3,\)"):
        simdattn.attention(q, q, q, sinks=torch.zeros(3), out=out)
    with pytest.raises(TypeError, match=r"simdattn.attention: sinks must hold real numbers, got "
                                        r"dtype complex64"):
        simdattn.attention(q, q, q, sinks=torch.zeros(4, dtype=torch.complex64), out=out)
    with pytest.raises(TypeError, match=r"sinks must hold real numbers, got dtype bool"):
        simdattn.attention(q, q, q, sinks=torch.zeros(4, dtype=torch.bool), out=out)
    nan = torch.zeros(4)
    nan[2] = float("nan")
    with pytest.raises(ValueError, match=r"simdattn::attention: options.sinks\[2\] must be finite "
                                         r"or -inf \(no sink\), got nan"):
        simdattn.attention(q, q, q, sinks=nan, out=out)
    with pytest.raises(ValueError, match=r"options.sinks\[0\] must be finite or -inf"):
        torch.ops.simdattn.attention(q, q, q, sinks=torch.full((4,), float("inf")))
    with pytest.raises(ValueError, match=r"sinks must be a 1-D sequence of 4 entries, got shape "
                                         r"\(2, 2\)"):
        torch.ops.simdattn.attention(q, q, q, sinks=torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"options.sink_tokens must be >= 0 \(0: off\), got -2"):
        torch.ops.simdattn.attention(q, q, q, sink_tokens=-2)
    with pytest.raises(ValueError, match=r"simdattn::softmax_rows: sinks\[2\] must be finite or "
                                         r"-inf \(no sink\), got nan"):
        simdattn.softmax_rows(torch.zeros(1, 4, 2, 3), sinks=nan)
    assert torch.all(out == 7.0)
