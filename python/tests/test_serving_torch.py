"""The serving layouts on PyTorch tensors: attention_varlen against torch's
scaled_dot_product_attention called sequence by sequence, attention_paged over bfloat16 and
float16 pools against the float64 oracle (results are tensors of the inputs' kind, lse too),
index arrays given as int32 or int64 tensors, and a given out written in place."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import simdattn  # noqa: E402
from conftest import assert_close, oracle_attention, stored_tolerance, widen  # noqa: E402
from conftest import torch_uniform as uniform  # noqa: E402


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(20261206)


def cu_seqlens(lengths, dtype=torch.int32):
    return torch.tensor([0] + list(np.cumsum(lengths)), dtype=dtype)


@pytest.mark.parametrize("causal", [None, "top_left"])
def test_varlen_matches_torch_sdpa_per_sequence(causal, generator):
    lengths = [7, 1, 0, 19]
    cu = cu_seqlens(lengths, torch.int64)
    q = uniform(int(cu[-1]), 4, 32, generator=generator, low=-2, high=2)
    k = uniform(int(cu[-1]), 2, 32, generator=generator, low=-2, high=2)
    v = uniform(int(cu[-1]), 2, 16, generator=generator)
    out, lse = simdattn.attention_varlen(q, k, v, cu, cu, causal=causal, return_lse=True)
    assert isinstance(out, torch.Tensor) and out.shape == (int(cu[-1]), 4, 16)
    assert isinstance(lse, torch.Tensor) and lse.shape == (4, int(cu[-1]))
    for b in range(len(lengths)):
        rows = slice(int(cu[b]), int(cu[b + 1]))
        if lengths[b] == 0:
            continue
        q_b, k_b, v_b = (x[rows].transpose(0, 1)[None] for x in (q, k, v))
        expected = torch.nn.functional.scaled_dot_product_attention(
            q_b, k_b, v_b, is_causal=causal == "top_left", enable_gqa=True)
        oracle = oracle_attention(q_b.numpy(), k_b.numpy(), v_b.numpy(), causal=causal)[0]
        # torch's own float32 result is within the same bound of the oracle as ours, so the
        # two differ by at most twice that.
        bound = stored_tolerance(q_b.double().numpy(), k_b.double().numpy(),
                                 v_b.double().numpy())
        assert_close(out[rows].transpose(0, 1)[None].numpy(), oracle, bound, f"sequence {b}")
        assert_close(out[rows].transpose(0, 1)[None].numpy(), expected.numpy(), 2 * bound,
                     f"sequence {b} against torch")


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("layout", ["bhsd", "bshd"])
def test_paged_decoding_over_16_bit_pools(dtype, layout, generator):
    torch_dtype = getattr(torch, dtype)
    block_size, kv_heads, q_heads, head_dim = 16, 2, 8, 64
    lengths = [1, 40, 1100, 17]
    per_sequence = [-(-n // block_size) for n in lengths]
    blocks = sum(per_sequence) + 1
    shape = ((blocks, kv_heads, block_size, head_dim) if layout == "bhsd"
             else (blocks, block_size, kv_heads, head_dim))
    k_pool = uniform(*shape, generator=generator, low=-2, high=2, dtype=torch_dtype)
    v_pool = uniform(*shape, generator=generator, dtype=torch_dtype)
    order = torch.randperm(blocks, generator=generator)
    table = torch.full((len(lengths), max(per_sequence)), -1, dtype=torch.int64)
    used = 0
    for b, count in enumerate(per_sequence):
        table[b, :count] = order[used:used + count]
        used += count
    q = uniform(len(lengths), q_heads, head_dim, generator=generator, low=-2, high=2,
                dtype=torch_dtype)
    seq_lens = torch.tensor(lengths, dtype=torch.int32)
    out = torch.empty(len(lengths), q_heads, head_dim, dtype=torch_dtype)
    returned = simdattn.attention_paged(q, k_pool, v_pool, table, seq_lens, out=out,
                                        layout=layout)
    assert returned is out and out.dtype == torch_dtype
    pools = [widen(p) if layout == "bhsd" else widen(p).transpose(0, 2, 1, 3)
             for p in (k_pool, v_pool)]
    for b, n in enumerate(lengths):
        key_rows = [(int(table[b, j // block_size]), j % block_size) for j in range(n)]
        k_b, v_b = (np.stack([p[blk, :, r] for blk, r in key_rows]).transpose(1, 0, 2)[None]
                    for p in pools)
        q_b = widen(q[b:b + 1]).transpose(1, 0, 2)[None]
        expected = oracle_attention(q_b, k_b, v_b)[0]
        bound = stored_tolerance(q_b, k_b, v_b, out_dtype=dtype)
        assert_close(widen(out[b:b + 1]).transpose(1, 0, 2)[None], expected, bound,
                     f"{dtype} sequence {b}")


def test_varlen_refuses_mixed_kinds(generator):
    q = uniform(3, 1, 4, generator=generator)
    cu = [0, 3]
    with pytest.raises(TypeError, match="k must be of the same kind as q"):
        simdattn.attention_varlen(q, q.numpy(), q, cu, cu)
    with pytest.raises(TypeError, match="block_table must hold integers"):
        simdattn.attention_paged(q, q[None], q[None], torch.zeros(1, 1), [3])
