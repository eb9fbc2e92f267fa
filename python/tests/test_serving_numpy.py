"""The serving layouts on NumPy arrays: attention_varlen (packed batches, as
flash_attn_varlen_func), attention_paged (paged K/V caches with block tables: decoding and
chunked prefill) and attention(shard=) (a shard of a longer sequence's keys), each against the
float64 oracle of conftest.py applied sequence by sequence, and their reference twins; block
sizes 1, 5 and 16 in both pool layouts, shuffled and shared blocks, empty and one-key sequences,
float16 and int8 pools; thread-count invariance; no copies; and the errors for bad tables."""
from __future__ import annotations

import numpy as np
import pytest

import simdattn
from conftest import assert_close, oracle_attention, random_array, stored_tolerance, widen

# Queries and keys per sequence: an empty sequence, a single key, sequences crossing the tiles'
# edges, and more keys than queries (a cached prefix).
Q_LENS = [5, 0, 17, 1, 33]
K_LENS = [9, 4, 40, 1, 70]

# Option sets, each applied to every sequence as attention() would apply it alone.
CASES = {
    "plain": dict(),
    "bottom_right": dict(causal="bottom_right"),
    "top_left": dict(causal="top_left"),
    "window": dict(causal="bottom_right", window=(6, 0)),
    "softcap_alibi": dict(scale=0.4, softcap=3.0, alibi_slopes="per-head"),
    "sinks": dict(causal="bottom_right", window=(4, 0), sinks="mixed", sink_tokens=2),
    "mask": dict(mask="random"),
}


def resolve(options, q_heads, total_q, max_k, rng):
    """The case's options with per-head arrays and the mask filled in."""
    options = dict(options)
    if options.get("alibi_slopes") == "per-head":
        options["alibi_slopes"] = np.array([0.5 ** (h + 1) for h in range(q_heads)], np.float32)
    if options.get("sinks") == "mixed":
        options["sinks"] = np.resize(np.array([-np.inf, 0.0, 1.5, -0.75], np.float32), q_heads)
    if options.get("mask") == "random":
        mask = random_array(rng, q_heads, total_q, max_k, low=-2, high=2)
        mask[rng.random(mask.shape) < 0.2] = -np.inf
        options["mask"] = mask
    return options


def packed_batch(rng, q_lens, k_lens, q_heads, kv_heads, head_dim, value_dim):
    """q [total_q, Hq, D], k [total_k, Hkv, D], v [total_k, Hkv, Dv] and the cu_seqlens."""
    cu_q = np.concatenate([[0], np.cumsum(q_lens)]).astype(np.int32)
    cu_k = np.concatenate([[0], np.cumsum(k_lens)]).astype(np.int32)
    q = random_array(rng, int(cu_q[-1]), q_heads, head_dim, low=-2, high=2)
    k = random_array(rng, int(cu_k[-1]), kv_heads, head_dim, low=-2, high=2)
    v = random_array(rng, int(cu_k[-1]), kv_heads, value_dim)
    return q, k, v, cu_q, cu_k


def bhsd(rows):
    """[S, H, D] rows of one sequence as the oracle's [1, H, S, D], exact values in float64."""
    return np.asarray(rows, np.float64).transpose(1, 0, 2)[None]


def oracle_varlen(q, k, v, cu_q, cu_k, options):
    """(out [total_q, Hq, Dv], lse [Hq, total_q], bound): the float64 oracle per sequence, and
    the README's error bound for the worst sequence (stored_tolerance, whose largest logit L
    also counts the softcap, the ALiBi bias and the mask)."""
    options = dict(options)
    mask = options.pop("mask", None)
    q_heads, value_dim = q.shape[1], v.shape[2]
    out = np.zeros((q.shape[0], q_heads, value_dim))
    lse = np.zeros((q_heads, q.shape[0]))
    bound = 0.0
    for b in range(len(cu_q) - 1):
        rows, keys = slice(cu_q[b], cu_q[b + 1]), slice(cu_k[b], cu_k[b + 1])
        q_b, k_b, v_b = bhsd(q[rows]), bhsd(k[keys]), bhsd(v[keys])
        mask_b = None if mask is None else mask[:, rows, :k_b.shape[2]][None].astype(np.float64)
        out_b, lse_b, _ = oracle_attention(q_b, k_b, v_b, mask=mask_b, **options)
        out[rows] = out_b[0].transpose(1, 0, 2)
        lse[:, rows] = lse_b[0]
        extra = [options.get("softcap", 0.0)]
        if options.get("alibi_slopes") is not None:
            extra.append(float(np.max(options["alibi_slopes"])) * (q_b.shape[2] + k_b.shape[2]))
        if mask_b is not None:
            extra.append(float(np.max(np.abs(mask_b[np.isfinite(mask_b)]), initial=0.0)))
        bound = max(bound, stored_tolerance(q_b, k_b, v_b, scale=options.get("scale"),
                                            mask=np.array([sum(extra)])))
    return out, lse, bound


def lse_bound(bound, lse):
    finite = np.abs(lse[np.isfinite(lse)])
    return 4 * bound + 1e-6 * (float(finite.max()) if finite.size else 0.0)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("algorithm", ["auto", "composed", "fused"])
def test_varlen_matches_the_oracle(case, algorithm, rng):
    q, k, v, cu_q, cu_k = packed_batch(rng, Q_LENS, K_LENS, 4, 2, 16, 8)
    options = resolve(CASES[case], 4, q.shape[0], max(K_LENS), rng)
    expected, expected_lse, bound = oracle_varlen(q, k, v, cu_q, cu_k, options)
    out, lse = simdattn.attention_varlen(q, k, v, cu_q, cu_k, return_lse=True,
                                         algorithm=algorithm, **options)
    assert out.shape == (q.shape[0], 4, 8) and lse.shape == (4, q.shape[0])
    assert_close(out, expected, bound, f"{case} out")
    assert_close(lse, expected_lse, lse_bound(bound, expected_lse), f"{case} lse")
    if algorithm == "auto":
        ref_out, ref_lse = simdattn.reference.attention_varlen(q, k, v, cu_q, cu_k,
                                                               return_lse=True, **options)
        assert_close(ref_out, expected, bound, f"{case} reference out")
        assert_close(ref_lse, expected_lse, lse_bound(bound, expected_lse), f"{case} ref lse")


def paginate(rng, k, v, cu_k, block_size, layout, spare_blocks=3):
    """Pools holding each sequence's keys in shuffled blocks (plus spare blocks of noise), and
    the block table (entries past a sequence's last block are -1: never read)."""
    batch = len(cu_k) - 1
    lengths = np.diff(cu_k)
    needed = [-(-int(n) // block_size) for n in lengths]
    blocks_per_sequence = max(max(needed), 1)
    total = sum(needed) + spare_blocks
    kv_heads, head_dim, value_dim = k.shape[1], k.shape[2], v.shape[2]
    k_pool = random_array(rng, total, block_size, kv_heads, head_dim, low=-9, high=9)
    v_pool = random_array(rng, total, block_size, kv_heads, value_dim, low=-9, high=9)
    order = rng.permutation(total)
    table = np.full((batch, blocks_per_sequence), -1, np.int32)
    used = 0
    for b in range(batch):
        for i in range(needed[b]):
            block = order[used]
            used += 1
            table[b, i] = block
            first = cu_k[b] + i * block_size
            rows = min(block_size, cu_k[b + 1] - first)
            k_pool[block, :rows] = k[first:first + rows]
            v_pool[block, :rows] = v[first:first + rows]
    if layout == "bhsd":                          # [num_blocks, Hkv, block_size, D], copied
        k_pool = np.ascontiguousarray(k_pool.transpose(0, 2, 1, 3))
        v_pool = np.ascontiguousarray(v_pool.transpose(0, 2, 1, 3))
    return k_pool, v_pool, table, lengths.astype(np.int32)


@pytest.mark.parametrize("block_size", [1, 5, 16])
@pytest.mark.parametrize("layout", ["bhsd", "bshd"])
@pytest.mark.parametrize("case", ["plain", "bottom_right", "window", "sinks", "softcap_alibi"])
def test_paged_chunked_prefill_matches_the_oracle(block_size, layout, case, rng):
    # Chunked prefill: each sequence's queries are the last of its cached keys.
    q_lens = [5, 0, 3, 1, 16]
    q, k, v, cu_q, cu_k = packed_batch(rng, q_lens, K_LENS, 4, 2, 16, 8)
    options = resolve(CASES[case], 4, q.shape[0], max(K_LENS), rng)
    options.setdefault("causal", "bottom_right")
    expected, expected_lse, bound = oracle_varlen(q, k, v, cu_q, cu_k, options)
    k_pool, v_pool, table, lengths = paginate(rng, k, v, cu_k, block_size, layout)
    out, lse = simdattn.attention_paged(q, k_pool, v_pool, table, lengths, cu_q, layout=layout,
                                        return_lse=True, **options)
    assert_close(out, expected, bound, f"paged {case} out")
    assert_close(lse, expected_lse, lse_bound(bound, expected_lse), f"paged {case} lse")
    reference = simdattn.reference.attention_paged(q, k_pool, v_pool, table, lengths, cu_q,
                                                   layout=layout, **options)
    assert_close(reference, expected, bound, f"paged {case} reference")


@pytest.mark.parametrize("block_size", [1, 16])
def test_paged_decoding_with_shared_prefix_blocks(block_size, rng):
    # Four sequences share their first blocks (one prompt) and then go their own ways; decoding
    # passes no cu_seqlens_q (one query per sequence). Lengths span several decode key chunks.
    q_heads, kv_heads, head_dim = 8, 2, 32
    prefix_blocks = 3
    prefix = prefix_blocks * block_size
    own = [0, 1, 700, 1500]
    blocks = prefix_blocks + sum(-(-n // block_size) for n in own) + 2
    k_pool = random_array(rng, blocks, kv_heads, block_size, head_dim, low=-2, high=2)
    v_pool = random_array(rng, blocks, kv_heads, block_size, head_dim)
    order = rng.permutation(blocks)
    shared, rest = order[:prefix_blocks], list(order[prefix_blocks:])
    width = prefix_blocks + max(-(-n // block_size) for n in own)
    table = np.full((len(own), width), -1, np.int32)
    for b, n in enumerate(own):
        table[b, :prefix_blocks] = shared
        for i in range(-(-n // block_size)):
            table[b, prefix_blocks + i] = rest.pop()
    lengths = np.array([prefix + n for n in own], np.int32)
    q = random_array(rng, len(own), q_heads, head_dim, low=-2, high=2)
    out, lse = simdattn.attention_paged(q, k_pool, v_pool, table, lengths, return_lse=True)
    one_thread = simdattn.attention_paged(q, k_pool, v_pool, table, lengths, num_threads=1)
    assert np.array_equal(out, one_thread), "the result depends on the thread count"
    for b, n in enumerate(lengths):
        rows = [k_pool[table[b, j // block_size], :, j % block_size] for j in range(n)]
        values = [v_pool[table[b, j // block_size], :, j % block_size] for j in range(n)]
        q_b, k_b, v_b = bhsd(q[b:b + 1]), bhsd(np.stack(rows)), bhsd(np.stack(values))
        expected, expected_lse, _ = oracle_attention(q_b, k_b, v_b)
        bound = stored_tolerance(q_b, k_b, v_b)
        assert_close(out[b], expected[0, :, 0], bound, f"sequence {b} out")
        assert_close(lse[:, b], expected_lse[0, :, 0], lse_bound(bound, expected_lse),
                     f"sequence {b} lse")


@pytest.mark.parametrize("dtype", ["float16", "int8"])
def test_paged_16_bit_and_int8_pools(dtype, rng):
    q, k, v, cu_q, cu_k = packed_batch(rng, [1, 4, 2], [30, 17, 2], 4, 4, 32, 32)
    k_pool, v_pool, table, lengths = paginate(rng, k, v, cu_k, 16, "bhsd")
    options = dict(causal="bottom_right")
    if dtype == "float16":
        k_pool, v_pool = k_pool.astype(np.float16), v_pool.astype(np.float16)
        k_exact, v_exact = widen(k_pool), widen(v_pool)
    else:
        k_pool, k_scale = simdattn.quantize_rows(k_pool, groups=4)
        v_pool, v_scale = simdattn.quantize_rows(v_pool)
        options.update(k_scale=k_scale, v_scale=v_scale)
        k_exact, v_exact = widen(k_pool, k_scale), widen(v_pool, v_scale)
    out = simdattn.attention_paged(q, k_pool, v_pool, table, lengths, cu_q, **options)
    for b in range(len(lengths)):
        rows = [(table[b, j // 16], j % 16) for j in range(lengths[b])]
        k_b = bhsd(np.stack([k_exact[blk, :, r] for blk, r in rows]))
        v_b = bhsd(np.stack([v_exact[blk, :, r] for blk, r in rows]))
        q_b = bhsd(q[cu_q[b]:cu_q[b + 1]])
        expected = oracle_attention(q_b, k_b, v_b, causal="bottom_right")[0]
        bound = stored_tolerance(q_b, k_b, v_b, int8_cache=dtype == "int8")
        assert_close(bhsd(out[cu_q[b]:cu_q[b + 1]]), expected, bound, f"{dtype} sequence {b}")


def test_varlen_and_paged_agree_with_attention_per_sequence(rng):
    # The packed call equals attention() called sequence by sequence, within the bound.
    q, k, v, cu_q, cu_k = packed_batch(rng, [7, 3], [7, 20], 2, 1, 8, 8)
    out = simdattn.attention_varlen(q, k, v, cu_q, cu_k, causal="bottom_right")
    for b in range(2):
        rows, keys = slice(cu_q[b], cu_q[b + 1]), slice(cu_k[b], cu_k[b + 1])
        alone = simdattn.attention(q[rows][None], k[keys][None], v[keys][None],
                                   causal="bottom_right", layout="bshd")
        q_b, k_b, v_b = bhsd(q[rows]), bhsd(k[keys]), bhsd(v[keys])
        assert_close(out[rows], alone[0], 2 * stored_tolerance(q_b, k_b, v_b), f"sequence {b}")


def test_results_do_not_depend_on_the_thread_count(rng):
    q, k, v, cu_q, cu_k = packed_batch(rng, [1, 1, 1, 1], [3000, 64, 1, 2100], 8, 2, 64, 64)
    runs = [simdattn.attention_varlen(q, k, v, cu_q, cu_k, num_threads=n) for n in (1, 2, 3)]
    assert all(np.array_equal(runs[0], run) for run in runs[1:])


def test_strided_inputs_and_a_given_out_are_used_in_place(rng):
    q, k, v, cu_q, cu_k = packed_batch(rng, [3, 2], [3, 5], 2, 2, 8, 8)
    wide = random_array(rng, q.shape[0], 2, 24)
    wide[:, :, 4:12] = q                                  # q as a strided view of a wider array
    q_view = wide[:, :, 4:12]
    assert not q_view.flags.c_contiguous
    out = np.full((q.shape[0], 2, 8), 7.0, np.float32)
    returned = simdattn.attention_varlen(q_view, k, v, cu_q, cu_k, out=out)
    assert returned is out
    expected, _, bound = oracle_varlen(q, k, v, cu_q, cu_k, {})
    assert_close(out, expected, bound, "out written in place")
    k_pool, v_pool, table, lengths = paginate(rng, k, v, cu_k, 4, "bshd")
    paged_out = np.full_like(out, 7.0)
    assert simdattn.attention_paged(q_view, k_pool, v_pool, table, lengths, cu_q,
                                    layout="bshd", out=paged_out) is paged_out
    assert_close(paged_out, expected, bound, "paged out written in place")


# A shard of a longer sequence's keys: attention over each shard with its key_offset, merged,
# is attention over the whole sequence.
@pytest.mark.parametrize("options", [dict(), dict(causal="bottom_right"),
                                     dict(causal="top_left", window=(5, 2)),
                                     dict(causal="bottom_right", alibi_slopes=[0.25, 0.5])],
                         ids=["plain", "bottom_right", "top_left_window", "alibi"])
def test_key_shards_merge_into_the_whole(options, rng):
    q = random_array(rng, 1, 2, 6, 16, low=-2, high=2)
    k = random_array(rng, 1, 2, 23, 16, low=-2, high=2)
    v = random_array(rng, 1, 2, 23, 8)
    cuts = [0, 9, 10, 23]
    outs, lses = [], []
    for first, last in zip(cuts[:-1], cuts[1:]):
        out, lse = simdattn.attention(q, k[:, :, first:last], v[:, :, first:last],
                                      kv_lengths=[23], shard=(first, 0), return_lse=True,
                                      **options)
        outs.append(out)
        lses.append(lse)
    merged, merged_lse = simdattn.merge_attention_states(outs, lses, return_lse=True)
    expected, expected_lse, _ = oracle_attention(q, k, v, **options)
    extra = 0.5 * 29 if "alibi_slopes" in options else 0.0
    bound = 2 * stored_tolerance(q, k, v, mask=np.array([extra]))
    assert_close(merged, expected, bound, "merged shards")
    assert_close(merged_lse, expected_lse, lse_bound(bound, expected_lse), "merged lse")
    reference = simdattn.reference.attention(q, k[:, :, 9:], v[:, :, 9:], kv_lengths=[23],
                                             shard=(9, 0), **options)
    fast = simdattn.attention(q, k[:, :, 9:], v[:, :, 9:], kv_lengths=[23], shard=(9, 0),
                              **options)
    assert_close(fast, reference, bound, "shard against the reference")


# --- Bad input: a clear error naming the argument, and nothing written ---

def _packed(rng):
    return packed_batch(rng, [2, 3], [4, 6], 2, 1, 8, 8)


@pytest.mark.parametrize("cu_q, cu_k, error, needle", [
    ([0, 3, 2], [0, 4, 10], ValueError, "cu_seqlens_q"),
    ([0, 2, 5], [0, 4, 9], ValueError, "cu_seqlens_k"),
    ([0, 2, 5], [0, 4], ValueError, "cu_seqlens_k must have 3 entries"),
    ([0, 2, 5], [0, 4, 2**31], ValueError, "int32"),
    ([0.0, 2.0, 5.0], [0, 4, 10], TypeError, "cu_seqlens_q must hold integers"),
    ([[0, 2, 5]], [0, 4, 10], ValueError, "cu_seqlens_q must have 1 dimension"),
    ([], [], ValueError, r"cu_seqlens_q must have batch \+ 1 >= 1 entries"),
])
def test_varlen_rejects_bad_cu_seqlens(cu_q, cu_k, error, needle, rng):
    q, k, v, _, _ = _packed(rng)
    out = np.full((5, 2, 8), 7.0, np.float32)
    with pytest.raises(error, match=needle):
        simdattn.attention_varlen(q, k, v, cu_q, cu_k, out=out)
    assert np.all(out == 7.0), "written before the error"


def test_varlen_rejects_wrong_ranks_and_kinds(rng):
    q, k, v, cu_q, cu_k = _packed(rng)
    with pytest.raises(ValueError, match="q must have 3 dimensions"):
        simdattn.attention_varlen(q[None], k, v, cu_q, cu_k)
    with pytest.raises(ValueError, match="out must have 3 dimensions"):
        simdattn.attention_varlen(q, k, v, cu_q, cu_k, out=np.zeros((1, 5, 2, 8), np.float32))
    with pytest.raises(TypeError, match="k must be a numpy.ndarray or a torch.Tensor"):
        simdattn.attention_varlen(q, k.tolist(), v, cu_q, cu_k)
    with pytest.raises(ValueError, match="kv head"):
        simdattn.attention_varlen(q, np.concatenate([k] * 3, axis=1),
                                  np.concatenate([v] * 3, axis=1), cu_q, cu_k)


def _paged(rng):
    q, k, v, cu_q, cu_k = _packed(rng)
    k_pool, v_pool, table, lengths = paginate(rng, k, v, cu_k, 4, "bhsd")
    return q, k_pool, v_pool, table, lengths, cu_q


@pytest.mark.parametrize("change, error, needle", [
    (lambda a: a["table"].__setitem__((0, 0), 99), ValueError, r"block_table\[0, 0\] must be a block"),
    (lambda a: a["table"].__setitem__((1, 0), -1), ValueError, r"block_table\[1, 0\]"),
    (lambda a: a["lengths"].__setitem__(1, 9), ValueError, r"seq_lens\[1\] must be at most"),
    (lambda a: a["lengths"].__setitem__(0, -1), ValueError, r"seq_lens\[0\] must be >= 0"),
    (lambda a: a.__setitem__("table", a["table"][:, :1]), ValueError, r"seq_lens\[1\]"),
    (lambda a: a.__setitem__("lengths", a["lengths"][:1]), ValueError, "seq_lens must have 2 entries"),
    (lambda a: a.__setitem__("cu_q", [0, 5]), ValueError, "cu_seqlens_q must have 3 entries"),
    (lambda a: a.__setitem__("k_pool", a["k_pool"][:, :, :0]), ValueError, "block_size"),
    (lambda a: a.__setitem__("k_pool", a["k_pool"][..., :4]), ValueError, r"k_cache.shape\[3\]"),
    (lambda a: a.__setitem__("v_pool", a["v_pool"].astype(np.float16)), ValueError, "v_cache.dtype must equal k_cache.dtype"),
    (lambda a: a.__setitem__("table", a["table"].astype(np.float32)), TypeError, "block_table must hold integers"),
    (lambda a: a.__setitem__("layout", "bsdh"), ValueError, "layout must be one of"),
])
def test_paged_rejects_bad_tables_and_pools(change, error, needle, rng):
    q, k_pool, v_pool, table, lengths, cu_q = _paged(rng)
    arguments = dict(k_pool=k_pool, v_pool=v_pool, table=table, lengths=lengths, cu_q=cu_q,
                     layout="bhsd")
    change(arguments)
    out = np.full((q.shape[0], 2, 8), 7.0, np.float32)
    with pytest.raises(error, match=needle):
        simdattn.attention_paged(q, arguments["k_pool"], arguments["v_pool"], arguments["table"],
                                 arguments["lengths"], arguments["cu_q"], out=out,
                                 layout=arguments["layout"])
    assert np.all(out == 7.0), "written before the error"


def test_shard_must_be_a_pair_of_ints(rng):
    q = random_array(rng, 1, 1, 2, 4)
    with pytest.raises(ValueError, match="shard must be a pair"):
        simdattn.attention(q, q, q, shard=3)
    with pytest.raises(TypeError, match="shard key_offset must be an int"):
        simdattn.attention(q, q, q, shard=(1.5, 0))
