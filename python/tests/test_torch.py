"""PyTorch tensors in simdattn.attention, and simdattn.torch: the custom op, torch.export and
torch.compile through it, the SDPA drop-in against torch's own SDPA, and route_sdpa()."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import simdattn  # noqa: E402
import simdattn.torch as simdattn_torch  # noqa: E402
from conftest import assert_close, oracle_attention, tolerance  # noqa: E402


def randn(*shape, generator):
    return torch.randn(*shape, generator=generator, dtype=torch.float32)


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(20261204)


def sdpa_bound(query, key, value):
    return tolerance(query.numpy(), key.numpy(), value.numpy()) * 2  # two float32 results


# --- simdattn.attention on tensors -------------------------------------------------------------

def test_attention_on_tensors_returns_tensors(generator):
    q = randn(2, 4, 9, 16, generator=generator)
    k = randn(2, 2, 11, 16, generator=generator)
    v = randn(2, 2, 11, 8, generator=generator)
    out, lse = simdattn.attention(q, k, v, causal="bottom_right", return_lse=True)
    assert isinstance(out, torch.Tensor) and isinstance(lse, torch.Tensor)
    expected, expected_lse, _ = oracle_attention(q.numpy(), k.numpy(), v.numpy(),
                                                 causal="bottom_right")
    assert_close(out.numpy(), expected, tolerance(q.numpy(), k.numpy(), v.numpy()), "out")
    assert_close(lse.numpy(), expected_lse, 4 * tolerance(q.numpy(), k.numpy(), v.numpy()), "lse")


def test_tensor_views_are_read_in_place(generator):
    qkv = randn(2, 10, 3, 4, 16, generator=generator)      # [B, S, 3, H, D]
    q, k, v = qkv.unbind(2)                                # strided views, no copies
    out = torch.empty(2, 10, 4, 16)
    result = simdattn.attention(q, k, v, layout="bshd", out=out)
    assert result is out and result.data_ptr() == out.data_ptr()
    expected = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                              v.transpose(1, 2)).transpose(1, 2)
    assert_close(out.numpy(), expected.numpy(), sdpa_bound(q, k, v), "bshd views")
    # The library sees q's own memory: an out interleaved with it is an overlap.
    with pytest.raises(ValueError, match="out must not overlap q"):
        simdattn.attention(q, k, v, layout="bshd", out=qkv[:, :, 2].detach())


def test_tensors_that_record_gradients_are_read_without_copy(generator):
    q = randn(1, 2, 5, 8, generator=generator).requires_grad_()
    out = simdattn.attention(q, q, q)
    assert not out.requires_grad
    assert_close(out.numpy(), F.scaled_dot_product_attention(q, q, q).detach().numpy(),
                 sdpa_bound(q.detach(), q.detach(), q.detach()), "requires_grad input")


@pytest.mark.parametrize("dtype", [torch.float64, torch.int32])
def test_other_tensor_dtypes_are_type_errors(dtype):
    q = torch.zeros(1, 1, 2, 4, dtype=dtype)
    name = str(dtype).replace("torch.", "")
    with pytest.raises(TypeError, match=rf"q must have dtype float32, bfloat16, float16 or int8, got {name}"):
        simdattn.attention(q, q, q)
    with pytest.raises(TypeError, match=rf"query must have dtype torch.float32, torch.bfloat16 or "
                                        rf"torch.float16, got {dtype}"):
        simdattn_torch.scaled_dot_product_attention(q, q, q)


def test_mixing_numpy_and_torch_is_a_type_error():
    q = torch.zeros(1, 1, 2, 4)
    with pytest.raises(TypeError, match=r"k must be of the same kind as q \(torch\), got numpy"):
        simdattn.attention(q, np.zeros((1, 1, 2, 4), np.float32), q)


# --- scaled_dot_product_attention against torch's ---------------------------------------------

SDPA_CASES = {
    "plain": dict(),
    "causal-square": dict(is_causal=True),
    "causal-fewer-queries": dict(is_causal=True, queries=5),
    "causal-more-queries": dict(is_causal=True, queries=19),
    "scale": dict(scale=0.21),
    "bool-mask-2d": dict(mask="bool-2d"),
    "bool-mask-4d-fully-masked-rows": dict(mask="bool-4d"),
    "float-mask-broadcast-heads": dict(mask="float-b1"),
    "float-mask-last-dim-1": dict(mask="float-column"),
    "gqa": dict(gqa=True),
    "gqa-causal-mask": dict(gqa=True, mask="bool-2d"),
    "mqa-broadcast-without-gqa": dict(kv_heads=1),
    "three-d": dict(three_d=True, is_causal=True),
    "strided": dict(strided=True, is_causal=True),
}


@pytest.mark.parametrize("case", SDPA_CASES.values(), ids=SDPA_CASES.keys())
def test_sdpa_matches_torch(case, generator):
    batch, heads, queries, keys, head_dim, value_dim = 2, 4, case.get("queries", 13), 13, 32, 24
    kv_heads = 2 if case.get("gqa") else case.get("kv_heads", heads)
    query = randn(batch, heads, queries, head_dim, generator=generator)
    key = randn(batch, kv_heads, keys, head_dim, generator=generator)
    value = randn(batch, kv_heads, keys, value_dim, generator=generator)
    if case.get("strided"):
        query = randn(batch, queries, heads, head_dim, generator=generator).transpose(1, 2)
        key = randn(batch, keys, 2 * heads, head_dim, generator=generator)[:, :, ::2].transpose(1, 2)
        value = randn(batch, keys, heads, value_dim, generator=generator).transpose(1, 2)
    mask = None
    kind = case.get("mask")
    if kind == "bool-2d":
        mask = torch.rand(queries, keys, generator=generator) > 0.3
    elif kind == "bool-4d":
        mask = torch.rand(batch, heads, queries, keys, generator=generator) > 0.5
        mask[0, 1, 3] = False                      # a row that sees no key
    elif kind == "float-b1":
        mask = randn(batch, 1, queries, keys, generator=generator)
        mask[1, 0, 2, ::3] = float("-inf")
    elif kind == "float-column":
        mask = randn(batch, heads, queries, 1, generator=generator)
    if case.get("three_d"):
        query, key, value = query[0], key[0], value[0]
    kwargs = dict(attn_mask=mask, is_causal=case.get("is_causal", False), scale=case.get("scale"),
                  enable_gqa=bool(case.get("gqa")))
    expected = F.scaled_dot_product_attention(query, key, value, **kwargs)
    actual = simdattn_torch.scaled_dot_product_attention(query, key, value, **kwargs)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    assert_close(actual.numpy(), expected.numpy(), sdpa_bound(query, key, value),
                 f"sdpa {case}")


def test_sdpa_errors():
    q = torch.zeros(1, 2, 3, 4)
    sdpa = simdattn_torch.scaled_dot_product_attention
    with pytest.raises(ValueError, match=r"dropout_p must be 0.0 \(simdattn has no dropout\), got 0.1"):
        sdpa(q, q, q, dropout_p=0.1)
    with pytest.raises(ValueError, match="attn_mask must be None when is_causal=True"):
        sdpa(q, q, q, attn_mask=torch.ones(3, 3, dtype=torch.bool), is_causal=True)
    with pytest.raises(ValueError, match=r"with enable_gqa, key.size\(-3\) must divide query.size\(-3\) = 2, got 3"):
        k = torch.zeros(1, 3, 3, 4)
        sdpa(q, k, k, enable_gqa=True)
    with pytest.raises(ValueError, match=r"key.size\(-3\) must equal query.size\(-3\) = 4 .* got 2"):
        q4, k2 = torch.zeros(1, 4, 3, 4), torch.zeros(1, 2, 3, 4)
        sdpa(q4, k2, k2)
    with pytest.raises(ValueError, match="inputs require gradients"):
        sdpa(q.clone().requires_grad_(), q, q)
    with pytest.raises(TypeError, match=r"attn_mask must have dtype torch.bool, torch.float32 or "
                                        r"the query's \(torch.float32\), as in torch, got torch.float64"):
        sdpa(q, q, q, attn_mask=torch.zeros(3, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"attn_mask of shape \(4, 3\) must broadcast to"):
        sdpa(q, q, q, attn_mask=torch.zeros(4, 3))


# --- the custom op under torch's tooling -------------------------------------------------------

class Attention(torch.nn.Module):
    def forward(self, query, key, value):
        return simdattn_torch.scaled_dot_product_attention(query, key, value, is_causal=True,
                                                           enable_gqa=True)


def test_opcheck_passes(generator):
    q = randn(1, 4, 6, 8, generator=generator)
    k = randn(1, 2, 7, 8, generator=generator)
    results = torch.library.opcheck(torch.ops.simdattn.attention.default, (q, k, k),
                                    {"causal": "bottom_right"},
                                    test_utils=("test_schema", "test_faketensor",
                                                "test_aot_dispatch_static",
                                                "test_aot_dispatch_dynamic"))
    assert all(result == "SUCCESS" for result in results.values()), results


def test_the_op_takes_every_option_as_tensors_and_scalars(generator):
    q = randn(2, 4, 6, 16, generator=generator)
    k = randn(2, 2, 9, 16, generator=generator)
    v = randn(2, 2, 9, 8, generator=generator)
    kv_lengths = torch.tensor([9, 4])
    slopes = torch.tensor([0.5, 0.25, 0.125, 0.0625])
    out = torch.ops.simdattn.attention(q, k, v, None, kv_lengths, slopes, 0.3, "bottom_right",
                                       4, 0, 5.0, 1, "fused", "bhsd")
    expected, _, _ = oracle_attention(q.numpy(), k.numpy(), v.numpy(), scale=0.3,
                                      causal="bottom_right", window=(4, 0),
                                      kv_lengths=[9, 4], softcap=5.0,
                                      alibi_slopes=slopes.numpy())
    assert_close(out.numpy(), expected, tolerance(q.numpy(), k.numpy(), v.numpy(), 0.3),
                 "op with every option")


def test_torch_export_traces_through_the_op(generator):
    q = randn(2, 4, 9, 16, generator=generator)
    k = randn(2, 2, 9, 16, generator=generator)
    exported = torch.export.export(Attention(), (q, k, k))
    targets = [node.target for node in exported.graph.nodes if node.op == "call_function"]
    assert torch.ops.simdattn.attention.default in targets, targets
    expected = F.scaled_dot_product_attention(q, k, k, is_causal=True, enable_gqa=True)
    assert_close(exported.module()(q, k, k).numpy(), expected.numpy(), sdpa_bound(q, k, k),
                 "exported")


def test_torch_compile_traces_through_the_op(generator):
    q = randn(2, 4, 9, 16, generator=generator)
    k = randn(2, 2, 9, 16, generator=generator)
    compiled = torch.compile(Attention(), backend="aot_eager", fullgraph=True)
    expected = F.scaled_dot_product_attention(q, k, k, is_causal=True, enable_gqa=True)
    assert_close(compiled(q, k, k).numpy(), expected.numpy(), sdpa_bound(q, k, k), "compiled")


# --- route_sdpa ---------------------------------------------------------------------------------

class TinyBlock(torch.nn.Module):
    """Self-attention as models write it: projections, a BSHD -> BHSD view, F.sdpa."""

    def __init__(self, width=32, heads=4, dropout=0.0):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = torch.nn.Linear(width, 3 * width)
        self.proj = torch.nn.Linear(width, width)

    def forward(self, x):
        batch, seq, width = x.shape
        q, k, v = self.qkv(x).view(batch, seq, 3, self.heads, width // self.heads).unbind(2)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                           v.transpose(1, 2), is_causal=True,
                                           dropout_p=self.dropout)
        return self.proj(y.transpose(1, 2).reshape(batch, seq, width))


def test_route_sdpa_runs_a_models_attention_on_simdattn(generator):
    torch.manual_seed(0)
    model = TinyBlock().eval()
    x = randn(2, 10, 32, generator=generator)
    with torch.no_grad():
        expected = model(x)
        with warnings.catch_warnings():
            warnings.simplefilter("error")           # a fallback would be an error here
            with simdattn_torch.route_sdpa() as routing:
                actual = model(x)
    assert routing.routed_calls == 1 and routing.fallback_calls == 0
    assert_close(actual.numpy(), expected.numpy(), 1e-5, "routed model")


def test_route_sdpa_falls_back_and_says_so_once_per_reason(generator):
    torch.manual_seed(0)
    model = TinyBlock(dropout=0.5).train()
    x = randn(2, 10, 32, generator=generator)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        with simdattn_torch.route_sdpa() as routing:
            for _ in range(3):
                model(x).sum().backward()          # gradients: torch's business
            with torch.no_grad():
                for _ in range(2):
                    model(x)                       # dropout: torch's business too
    assert routing.routed_calls == 0 and routing.fallback_calls == 5
    messages = [str(w.message) for w in record
                if issubclass(w.category, simdattn_torch.FallbackWarning)]
    assert len(messages) == 2, messages
    assert "inputs require gradients" in messages[0]
    assert "dropout_p must be 0.0" in messages[1]
    assert model.qkv.weight.grad is not None


def test_route_sdpa_leaves_other_dtypes_to_torch(generator):
    q = randn(1, 2, 5, 8, generator=generator).to(torch.float64)
    with pytest.warns(simdattn_torch.FallbackWarning, match="torch.float64"):
        with simdattn_torch.route_sdpa() as routing:
            out = F.scaled_dot_product_attention(q, q, q)
    assert out.dtype == torch.float64 and routing.fallback_calls == 1


def test_the_gpt2_example_agrees_with_torch():
    # The example itself, scaled down: a KV-cache decoder whose attention is routed, checked
    # against the same model on torch's SDPA (logits and tokens).
    import pathlib
    import subprocess
    import sys

    example = pathlib.Path(__file__).parents[1] / "examples" / "gpt2_decode.py"
    result = subprocess.run([sys.executable, str(example), "--layers", "2", "--prompt", "12",
                             "--tokens", "5", "--batch", "2", "--vocabulary", "2000"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    # 2 layers x (2 warm-up steps + 5 steps) attention calls, all on simdattn.
    assert "routed to simdattn: 14, left to torch: 0" in result.stdout, result.stdout
