#!/usr/bin/env python3
"""simdattn's serving calls against PyTorch's scaled_dot_product_attention run sequence by
sequence, on the serving shapes of docs/bench-shapes.md.

PyTorch has no paged or packed attention on the CPU: a PyTorch server calls SDPA once per
sequence over a cache of that sequence's own ([1, Hkv, keys, D], enable_gqa=True; bottom-right
causal as an explicit boolean mask, since is_causal is top-left). simdattn gets the same keys in
a paged pool (block 16, blocks shuffled) or packed, in one call. Both see the same values, and
their outputs must agree within --agree (both lie within the README's bound of the exact
result) before a time counts. Each figure is the fastest call over --min-time seconds after one
warm-up, the two alternating so that the machine's drift hits both.

    python python/bench/serving_vs_torch.py [--threads 2] [--min-time 2] [--shapes serve_decode]

The sequence lengths follow docs/bench-shapes.md's distributions from NumPy's generator, so they
are not simdattn_bench's exact lengths; the script prints how many keys each shape holds.
Needs torch (python/run-tests installs it into .venv-python).
"""
from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import torch

import simdattn

Q_HEADS, KV_HEADS, HEAD_DIM, BLOCK = 32, 8, 128, 16


def serving_shapes(rng):
    """name -> [(queries, keys)] per sequence, and what simdattn calls it with."""
    decode = [(1, int(math.exp(x))) for x in rng.uniform(math.log(64), math.log(16384), 32)]
    prompts = [int(n) for n in rng.integers(64, 2049, 8)]
    return {
        "serve_decode": (decode, "paged"),
        "chunked_prefill": ([(512, 4096 + 512)] * 4, "paged"),
        "mixed_prefill": ([(n, n) for n in prompts], "packed"),
    }


class Batch:
    """One shape's inputs: per-sequence q/k/v tensors (torch's view) and the same values packed
    and paged (simdattn's)."""

    def __init__(self, sequences, generator):
        self.sequences = sequences
        uniform = lambda *shape: torch.rand(*shape, generator=generator) * 2 - 1
        self.q = [uniform(1, Q_HEADS, nq, HEAD_DIM) for nq, _ in sequences]
        self.k = [uniform(1, KV_HEADS, nk, HEAD_DIM) for _, nk in sequences]
        self.v = [uniform(1, KV_HEADS, nk, HEAD_DIM) for _, nk in sequences]
        self.masks = [torch.ones(nq, nk, dtype=torch.bool).tril(nk - nq) if nq > 1 else None
                      for nq, nk in sequences]
        lengths = [nk for _, nk in sequences]
        self.cu_q = np.cumsum([0] + [nq for nq, _ in sequences]).astype(np.int32)
        self.cu_k = np.cumsum([0] + lengths).astype(np.int32)
        self.seq_lens = np.array(lengths, np.int32)
        self.packed_q = torch.cat([q[0].transpose(0, 1) for q in self.q]).contiguous()
        self.packed_k = torch.cat([k[0].transpose(0, 1) for k in self.k]).contiguous()
        self.packed_v = torch.cat([v[0].transpose(0, 1) for v in self.v]).contiguous()
        self.out = torch.empty(self.packed_q.shape[0], Q_HEADS, HEAD_DIM)
        # The pool: [num_blocks, Hkv, BLOCK, D], each sequence's blocks shuffled across it.
        needed = [-(-n // BLOCK) for n in lengths]
        order = torch.randperm(sum(needed), generator=generator)
        self.table = np.zeros((len(lengths), max(needed)), np.int32)
        self.k_pool = torch.zeros(sum(needed), KV_HEADS, BLOCK, HEAD_DIM)
        self.v_pool = torch.zeros(sum(needed), KV_HEADS, BLOCK, HEAD_DIM)
        used = 0
        for b, n in enumerate(lengths):
            for i in range(needed[b]):
                block = int(order[used])
                used += 1
                self.table[b, i] = block
                rows = slice(i * BLOCK, min(n, (i + 1) * BLOCK))
                width = rows.stop - rows.start
                self.k_pool[block, :, :width] = self.k[b][0, :, rows]
                self.v_pool[block, :, :width] = self.v[b][0, :, rows]

    def torch_call(self):
        return [torch.nn.functional.scaled_dot_product_attention(
                    q, k, v, attn_mask=mask, enable_gqa=True)
                for q, k, v, mask in zip(self.q, self.k, self.v, self.masks)]

    def simdattn_call(self, layout, threads):
        if layout == "paged":
            return simdattn.attention_paged(self.packed_q, self.k_pool, self.v_pool, self.table,
                                            self.seq_lens, self.cu_q, causal="bottom_right",
                                            out=self.out, num_threads=threads)
        return simdattn.attention_varlen(self.packed_q, self.packed_k, self.packed_v, self.cu_q,
                                         self.cu_k, causal="bottom_right", out=self.out,
                                         num_threads=threads)

    def largest_difference(self, torch_outs):
        worst = 0.0
        for b, out_b in enumerate(torch_outs):
            mine = self.out[self.cu_q[b]:self.cu_q[b + 1]].transpose(0, 1)
            worst = max(worst, float((mine - out_b[0]).abs().max()))
        return worst


def fastest(calls, min_time):
    """Per call: the fastest of alternating runs over min_time seconds (at least 3 each)."""
    best = [math.inf] * len(calls)
    for call in calls:                                   # warm-up
        call()
    start, rounds = time.perf_counter(), 0
    while time.perf_counter() - start < min_time or rounds < 3:
        for i, call in enumerate(calls):
            begin = time.perf_counter()
            call()
            best[i] = min(best[i], time.perf_counter() - begin)
        rounds += 1
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-time", type=float, default=2.0)
    parser.add_argument("--shapes", default="serve_decode,chunked_prefill,mixed_prefill")
    parser.add_argument("--agree", type=float, default=1e-4,
                        help="largest |simdattn - torch| accepted before timing")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    shapes = serving_shapes(np.random.default_rng(20261206))
    print(f"simdattn {simdattn.__version__} ({simdattn.active_isa()}), torch {torch.__version__}, "
          f"{arguments.threads} threads, fp32, Hq {Q_HEADS}, Hkv {KV_HEADS}, D {HEAD_DIM}")
    print("| shape | sequences | keys | simdattn (ms) | torch per sequence (ms) | speedup |")
    print("| --- | --- | --- | --- | --- | --- |")
    failed = False
    for name in arguments.shapes.split(","):
        sequences, layout = shapes[name]
        batch = Batch(sequences, torch.Generator().manual_seed(7))
        with torch.no_grad():
            batch.simdattn_call(layout, arguments.threads)
            difference = batch.largest_difference(batch.torch_call())
            if difference > arguments.agree:
                print(f"| {name} | outputs disagree: largest difference {difference:.3g} > "
                      f"{arguments.agree:g}; not timed | | | | |")
                failed = True
                continue
            ours, theirs = fastest([lambda: batch.simdattn_call(layout, arguments.threads),
                                    batch.torch_call], arguments.min_time)
        keys = sum(nk for _, nk in sequences)
        print(f"| {name} ({layout}) | {len(sequences)} | {keys} | {ours * 1e3:.1f} | "
              f"{theirs * 1e3:.1f} | {theirs / ours:.2f}x |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
