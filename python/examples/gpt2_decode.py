#!/usr/bin/env python3
"""A decoder-only transformer with GPT-2 small's dimensions and random weights, generating
tokens greedily with a KV cache in PyTorch: once on torch's own scaled_dot_product_attention,
once with simdattn.torch.route_sdpa(). Prints tokens/s for both and checks that the logits agree.

    python python/examples/gpt2_decode.py [--layers 12] [--prompt 64] [--tokens 64] [--batch 1]

Exit status 0 when every step's logits agree within the bound and the same tokens come out,
1 otherwise. Random weights make the tokens meaningless; the arithmetic is the real thing.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

import simdattn.torch


@dataclass
class Config:
    layers: int = 12
    heads: int = 12
    width: int = 768
    vocabulary: int = 50257
    context: int = 1024


class Block(torch.nn.Module):
    """Pre-norm GPT-2 block; attention reads and extends a preallocated KV cache."""

    def __init__(self, config: Config):
        super().__init__()
        self.heads = config.heads
        self.norm_1 = torch.nn.LayerNorm(config.width)
        self.qkv = torch.nn.Linear(config.width, 3 * config.width)
        self.attention_out = torch.nn.Linear(config.width, config.width)
        self.norm_2 = torch.nn.LayerNorm(config.width)
        self.up = torch.nn.Linear(config.width, 4 * config.width)
        self.down = torch.nn.Linear(4 * config.width, config.width)

    def forward(self, x, k_cache, v_cache, position):
        batch, steps, width = x.shape
        head_dim = width // self.heads
        q, k, v = self.qkv(self.norm_1(x)).view(batch, steps, 3, self.heads, head_dim).unbind(2)
        k_cache[:, :, position:position + steps] = k.transpose(1, 2)
        v_cache[:, :, position:position + steps] = v.transpose(1, 2)
        # The cache up to the new tokens: a strided view, read in place by simdattn.
        keys = k_cache[:, :, :position + steps]
        values = v_cache[:, :, :position + steps]
        # Prefill from position 0: causal (top-left is right when queries and keys start
        # together); decoding one token: it sees the whole cache.
        y = F.scaled_dot_product_attention(q.transpose(1, 2), keys, values,
                                           is_causal=steps > 1)
        x = x + self.attention_out(y.transpose(1, 2).reshape(batch, steps, width))
        return x + self.down(F.gelu(self.up(self.norm_2(x)), approximate="tanh"))


class Decoder(torch.nn.Module):
    def __init__(self, config: Config):
        super().__init__()
        self.config = config
        self.token_embedding = torch.nn.Embedding(config.vocabulary, config.width)
        self.position_embedding = torch.nn.Embedding(config.context, config.width)
        self.blocks = torch.nn.ModuleList(Block(config) for _ in range(config.layers))
        self.norm = torch.nn.LayerNorm(config.width)
        for parameter in self.parameters():
            if parameter.dim() > 1:
                torch.nn.init.normal_(parameter, std=0.02)

    def new_cache(self, batch, length):
        shape = (batch, self.config.heads, length, self.config.width // self.config.heads)
        return [(torch.zeros(shape), torch.zeros(shape)) for _ in self.blocks]

    def forward(self, tokens, cache, position):
        steps = tokens.shape[1]
        positions = torch.arange(position, position + steps)
        x = self.token_embedding(tokens) + self.position_embedding(positions)
        for block, (k_cache, v_cache) in zip(self.blocks, cache):
            x = block(x, k_cache, v_cache, position)
        return self.norm(x[:, -1]) @ self.token_embedding.weight.T   # last position's logits


def generate(model, prompt, new_tokens):
    """Greedy decoding: (tokens, per-step logits, prefill seconds, decode seconds)."""
    batch, prompt_length = prompt.shape
    cache = model.new_cache(batch, prompt_length + new_tokens)
    start = time.perf_counter()
    logits = model(prompt, cache, 0)
    prefill = time.perf_counter() - start
    all_logits, tokens = [logits], [logits.argmax(-1)]
    start = time.perf_counter()
    for step in range(1, new_tokens):
        logits = model(tokens[-1][:, None], cache, prompt_length + step - 1)
        all_logits.append(logits)
        tokens.append(logits.argmax(-1))
    decode = time.perf_counter() - start
    return torch.stack(tokens, 1), torch.stack(all_logits, 1), prefill, decode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--prompt", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--vocabulary", type=int, default=50257)
    arguments = parser.parse_args()
    torch.manual_seed(0)
    model = Decoder(Config(layers=arguments.layers, vocabulary=arguments.vocabulary)).eval()
    prompt = torch.randint(0, arguments.vocabulary, (arguments.batch, arguments.prompt))

    with torch.inference_mode():
        generate(model, prompt, 2)                                    # warm-up
        torch_tokens, torch_logits, torch_prefill, torch_decode = generate(
            model, prompt, arguments.tokens)
        with simdattn.torch.route_sdpa() as routing:
            generate(model, prompt, 2)
            ours_tokens, ours_logits, ours_prefill, ours_decode = generate(
                model, prompt, arguments.tokens)

    decoded = arguments.batch * (arguments.tokens - 1)
    print(f"GPT-2 small dimensions, {arguments.layers} layers, random weights; batch "
          f"{arguments.batch}, prompt {arguments.prompt}, {arguments.tokens} new tokens; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; simdattn "
          f"{simdattn.__version__} ({simdattn.active_isa()})")
    for name, prefill, decode in (("torch SDPA", torch_prefill, torch_decode),
                                  ("simdattn", ours_prefill, ours_decode)):
        rate = decoded / decode if decode > 0 else math.inf
        print(f"  {name:11} prefill {prefill * 1e3:8.1f} ms   decode {rate:8.1f} tokens/s")
    print(f"  attention calls routed to simdattn: {routing.routed_calls}, left to torch: "
          f"{routing.fallback_calls}")

    # Each attention output is within a few float32 ulps of torch's; through the layers and the
    # vocabulary projection the logits (of magnitude ~1) stay within 1e-3 of each other.
    difference = (ours_logits - torch_logits).abs().max().item()
    scale = torch_logits.abs().max().item()
    same_tokens = torch.equal(ours_tokens, torch_tokens)
    print(f"  largest logit difference {difference:.3g} (largest logit {scale:.3g}); "
          f"same tokens: {same_tokens}")
    ok = difference <= 1e-3 * max(scale, 1.0) and same_tokens and routing.routed_calls > 0 \
        and routing.fallback_calls == 0
    print("OK" if ok else "FAIL: the logits or tokens differ, or attention was not routed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
