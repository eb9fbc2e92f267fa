#!/usr/bin/env python3
"""Writes the hand-made seeds of tests/fuzz/corpus/ (run it after changing the decoder's byte
order; tests/fuzz/README.md documents that order). Each seed is a list of named choices, so what a
seed exercises can be read here rather than guessed from its bytes.

    python3 tests/fuzz/make_corpus.py
"""
import pathlib
import random

HERE = pathlib.Path(__file__).resolve().parent
ATTENTION, QK_SCORES, SOFTMAX_ROWS, WEIGHTS_V, VARLEN, PAGED = range(6)
ISA_BEST = 2  # index into the host's ISAs, modulo their number: the best one on an AVX-512 host


def sizes(batch, kv_heads, group, sq, sk_byte, head_dim, value_dim):
    """B, Hkv, Hq / Hkv - 1, Sq, the Sk byte (< 240: Sk = byte % 41; else 1000 + 40 (byte - 240)),
    D - 1, Dv - 1 (both 1-20)."""
    return [batch, kv_heads, group - 1, sq, sk_byte, head_dim - 1, value_dim - 1]


def keys(sk_byte):
    return sk_byte % 41 if sk_byte < 240 else 1000 + (sk_byte - 240) * 40


def tensor(count, layout=(0,), flags=0, values=None, rng=None, specials=False):
    """Layout byte and its parameters, the flags byte, then one byte per element of the view."""
    out = list(layout) + [flags]
    if values is not None:
        out += values
    elif count:
        top = 256 if specials else 250
        out += [rng.randrange(top) for _ in range(count)]
    return out


def output(layout=(0,)):
    return list(layout) + [0]


def write(name, choices):
    data = bytes(choices)
    (HERE / "corpus" / name).write_bytes(data)
    print(f"{name}: {len(data)} bytes")


def main():
    rng = random.Random(20240601)
    (HERE / "corpus").mkdir(exist_ok=True)

    # Prefill: grouped heads (Hq 4, Hkv 2), Sq 9, Sk 33, bottom-right causal, weights and lse out,
    # k in [B, S, H, D] memory, v with gaps after rows, heads and batches, 2 threads.
    b, hkv, hq, sq, skb, d, dv = 1, 2, 4, 9, 33, 16, 12
    sk = keys(skb)
    write("attention_prefill_causal_gqa", [ATTENTION, ISA_BEST] + sizes(b, hkv, 2, sq, skb, d, dv)
          + [0, 0, 2, 0, 0, 0, 0, 0, 0, 1, 1, 1, 3, 0]
          + tensor(b * hq * sq * d, rng=rng, specials=True)
          + tensor(b * hkv * sk * d, layout=(5,), rng=rng)
          + tensor(b * hkv * sk * dv, layout=(6, 1, 2, 3), rng=rng)
          + output() + output() + output())

    # Decoding: one query, 1400 keys (split into chunks and merged), ragged kv_lengths, fused, lse.
    b, hkv, hq, sq, skb, d, dv = 2, 1, 3, 1, 250, 20, 8
    sk = keys(skb)
    write("attention_decode_ragged", [ATTENTION, ISA_BEST] + sizes(b, hkv, 3, sq, skb, d, dv)
          + [0, 2, 2, 0, 0, 0, 2, 200, 77, 0, 0, 0, 1, 3, 3, 0]
          + tensor(b * hq * sq * d, rng=rng)
          + tensor(b * hkv * sk * d, rng=rng)
          + tensor(b * hkv * sk * dv, rng=rng)
          + output() + output())

    # Every option: top-left causal, a left window of 4, soft-cap 5, kv_lengths, ALiBi, a full
    # mask (with -inf entries), composed, weights.
    b, hkv, hq, sq, skb, d, dv = 2, 1, 2, 6, 11, 8, 8
    sk = keys(skb)
    write("attention_every_option", [ATTENTION, 1] + sizes(b, hkv, 2, sq, skb, d, dv)
          + [0, 3, 3, 6, 3, 0, 4, 2, 11, 9, 2, 0, 1, 2, 1, 0, 2, 3, 0]
          + tensor(b * hq * sq * d, rng=rng)
          + tensor(b * hkv * sk * d, rng=rng)
          + tensor(b * hkv * sk * dv, rng=rng)
          + output()
          + tensor(b * hq * sq * sk, rng=rng)
          + output())

    # Hostile: q.strides[0] = 2^62 (its byte extent overflows int64): must be refused.
    write("attention_stride_overflow", [ATTENTION, 0] + sizes(2, 1, 1, 3, 5, 4, 4)
          + [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0]
          + tensor(0, layout=(9, 0, 4), values=[]))

    # An older caller: struct_size ends after `causal`; the weights it passes lie beyond it.
    b, hkv, hq, sq, skb, d, dv = 1, 1, 1, 4, 7, 4, 4
    sk = keys(skb)
    write("attention_older_struct", [ATTENTION, 0] + sizes(b, hkv, 1, sq, skb, d, dv)
          + [6, 2, 1, 0, 0, 0, 0, 0, 0, 1, 0, 2, 1, 0]
          + tensor(b * hq * sq * d, rng=rng)
          + tensor(b * hkv * sk * d, rng=rng)
          + tensor(b * hkv * sk * dv, rng=rng)
          + output() + output())

    # qk_scores: scale -0.7, q with gaps, out over nothing.
    b, hkv, hq, sq, skb, d = 1, 3, 6, 7, 19, 9
    sk = keys(skb)
    write("qk_scores_padded", [QK_SCORES, ISA_BEST] + sizes(b, hkv, 2, sq, skb, d, 1)
          + [3, 2, 0]
          + tensor(b * hq * sq * d, layout=(6, 2, 0, 1), rng=rng, specials=True)
          + tensor(b * hkv * sk * d, rng=rng)
          + output())

    # softmax_rows: scores in [-125, 125] with NaN, ±inf, -0 and subnormals among them.
    b, hkv, hq, sq, skb = 2, 1, 1, 5, 40
    sk = keys(skb)
    write("softmax_rows_specials", [SOFTMAX_ROWS, ISA_BEST] + sizes(b, hkv, 1, sq, skb, 1, 1)
          + [1]
          + tensor(b * hq * sq * sk, rng=rng, specials=True))

    # weights_v: grouped heads, v an expanded view (batch stride 0).
    b, hkv, hq, sq, skb, dv = 2, 1, 3, 4, 13, 17
    sk = keys(skb)
    write("weights_v_expanded", [WEIGHTS_V, 1] + sizes(b, hkv, 3, sq, skb, 1, dv)
          + [4, 0]
          + tensor(b * hq * sq * sk, rng=rng)
          + tensor(b * hkv * sk * dv, layout=(7, 0), rng=rng)
          + output())

    # weights_v with out aimed at the weights: must be refused.
    b, hkv, hq, sq, skb, dv = 1, 1, 1, 3, 3, 3
    sk = keys(skb)
    write("weights_v_out_over_weights", [WEIGHTS_V, 0] + sizes(b, hkv, 1, sq, skb, 1, dv)
          + [1, 15]
          + tensor(b * hq * sq * sk, rng=rng)
          + tensor(b * hkv * sk * dv, rng=rng)
          + output())

    # weights_v with no keys (Sk = 0): the weights view is empty, so its data may be NULL, yet it
    # has gaps after rows, heads and batches (strides that are not 0). No pointer arithmetic on
    # NULL (the oracle did some until TensorView::row returned nullptr for a view without data);
    # out gets zeros.
    b, hkv, hq, sq, skb, dv = 1, 1, 2, 2, 0, 3
    write("weights_v_no_keys", [WEIGHTS_V, 0] + sizes(b, hkv, 2, sq, skb, 1, dv)
          + [1, 1]
          + tensor(0, layout=(6, 3, 3, 3))
          + tensor(0)
          + output(layout=(6, 1, 1, 1)))


    # attention with learned sinks (1e4, -inf, 0.5, -1e4 for the four query heads) and two sink
    # tokens kept visible beside a left window of 4, bottom-right causal, lse out, 2 threads.
    b, hkv, hq, sq, skb, d, dv = 1, 2, 4, 5, 30, 8, 8
    sk = keys(skb)
    options = [0,        # struct_size: full
               0,        # scale: default
               2,        # causal: bottom-right
               6, 3,     # window_left 1 + 3 = 4
               0, 0,     # window_right -1, no soft-cap
               0, 0, 0,  # no kv_lengths, no ALiBi, no mask
               0, 1,     # no weights, lse
               1, 3, 0]  # algorithm auto, 2 threads, no aliasing
    write("attention_sinks_window", [ATTENTION, ISA_BEST] + sizes(b, hkv, 2, sq, skb, d, dv) + options
          + tensor(b * hq * sq * d, rng=rng)
          + tensor(b * hkv * sk * d, rng=rng)
          + tensor(b * hkv * sk * dv, rng=rng)
          + output() + output()
          + [2, 2, 0, 4, 3]   # sinks: 1e4, -inf, 0.5, -1e4
          + [5])              # sink_tokens 2

    # No heads (Hq = Hkv = 0): every view is empty, so each may claim a batch of 3 (a hostile size
    # that is valid here) beside kv_lengths of the one batch the sizes named. The library reads
    # kv_lengths for q's 3 batches: the harness pads the caller's array to that (fuzz_call.hpp's
    # cover), as a caller must.
    hostile_batch = (8, 0, 3)  # layout: size of dimension 0 from the hostile list, value 3
    write("attention_no_heads_batch_of_three", [ATTENTION, 0] + sizes(1, 0, 1, 1, 5, 4, 1)
          + [0, 0, 1, 0, 0, 0, 2, 3, 0, 0, 0, 0, 1, 1, 0]  # kv_lengths [2], defaults elsewhere
          + tensor(0, layout=hostile_batch, values=[])
          + tensor(0, layout=hostile_batch, values=[])
          + tensor(0, layout=hostile_batch, values=[])
          + output(layout=hostile_batch))

    # A packed batch of three sequences (5 queries over 17 keys, none over 3, 2 over none), in
    # [total, H, D] memory: bottom-right causal per sequence, a window of 5, soft-cap 5, sinks and
    # sink tokens, lse out, fused, 2 threads.
    hkv, hq, d, dv = 2, 4, 12, 8
    lengths = [(5, 17), (0, 3), (2, 0)]
    total_q, total_k = sum(q for q, _ in lengths), sum(k for _, k in lengths)
    batch_options = [0,          # scale: default
                     2,          # causal: bottom-right
                     6, 4, 0,    # window_left 1 + 4 = 5, window_right -1
                     4,          # soft-cap 5
                     0,          # no ALiBi
                     2, 2, 0, 4, 1,  # sinks: 1e4, -inf, 0.5, 0
                     5,          # sink_tokens 2
                     0, 0, 0,    # no kv_lengths, no mask, no weights
                     1, 3, 3, 0]  # lse, fused, 2 threads, no aliasing
    write("varlen_causal_sinks", [VARLEN, ISA_BEST] + sizes(1, hkv, 2, 1, 1, d, dv)
          + [len(lengths)] + [x for pair in lengths for x in pair]
          + [0]  # offsets valid
          + batch_options
          + tensor(total_q * hq * d, layout=(5,), rng=rng)
          + tensor(total_k * hkv * d, layout=(5,), rng=rng)
          + tensor(total_k * hkv * dv, layout=(5,), rng=rng)
          + output(layout=(5,)) + output())

    # Decoding over a paged cache: blocks of 256 keys, pools of 5 blocks in [num_blocks,
    # block_size, Hkv, D] memory; sequence 0 has 1100 keys in blocks 3 0 4 1 2 (split into chunks
    # and merged), sequence 1 has 37 in block 2 (shared), its unread entries -1 and 5 (past the
    # pools) ignored. Sinks, lse, 2 threads.
    hkv, hq, d, dv = 1, 3, 16, 8
    num_blocks, block_size, per_sequence = 5, 256, 5
    paged_options = [0, 2, 0, 0, 0, 0,
                     2, 3, 4, 0,     # sinks: -1e4, 0.5, -inf
                     0, 0, 0, 0, 1, 1, 3, 0]
    write("paged_decode_split", [PAGED, ISA_BEST] + sizes(1, hkv, 3, 1, 1, d, dv)
          + [2, 243, num_blocks, per_sequence]
          + [1, 1100 % 256, 1100 // 256, 1, 37, 0]
          + [3, 0, 4, 1, 2, 2, 6, 5, 0, 0]
          + [0]  # offsets valid
          + paged_options
          + tensor(2 * hq * d, layout=(5,), rng=rng)
          + tensor(num_blocks * block_size * hkv * d, layout=(5,), rng=rng)
          + tensor(num_blocks * block_size * hkv * dv, layout=(5,), rng=rng)
          + output(layout=(5,)) + output())

    # A block index past the pools where a sequence reads it: must be refused, nothing written.
    write("paged_block_out_of_range", [PAGED, 0] + sizes(1, 1, 1, 1, 1, 4, 4)
          + [1, 3, 2, 2]          # one sequence, blocks of 4 keys, 2 blocks, 2 per sequence
          + [2, 6, 0]             # 2 queries over 6 keys
          + [0, 2]                # its second block is 2: past the pools
          + [0]                   # offsets valid
          + [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0]  # no causal, no options, defaults
          + tensor(2 * 4, rng=rng) + tensor(2 * 4 * 4, rng=rng) + tensor(2 * 4 * 4, rng=rng) + output())

if __name__ == "__main__":
    main()
