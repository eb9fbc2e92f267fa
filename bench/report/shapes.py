"""The standard and serving shapes of docs/bench-shapes.md and the work each one represents.

simdattn_bench prints figures but not the shapes' sizes; the roofline needs them, so they are
written out here. bench_run cross-checks them against the bench's own FLOP count (gflops × time)
so that a change on one side without the other is caught rather than plotted. The serving shapes'
sequences are the bench's own, read from its JSON context (serving_shapes())."""
import json
from dataclasses import dataclass

FLOAT_BYTES = 4
# Queries per step up to which a shape is a decode step (the bench's kMaxDecodeQueries).
MAX_DECODE_QUERIES = 16


@dataclass(frozen=True)
class Shape:
    name: str
    batch: int
    q_heads: int
    kv_heads: int
    seq_q: int
    seq_k: int
    head_dim: int
    causal: bool

    def useful_flops(self):
        """FLOPs of the two products, 4·B·Hq·Sq·Sk·D, half of it for causal (Sq == Sk here)."""
        dense = 4.0 * self.batch * self.q_heads * self.seq_q * self.seq_k * self.head_dim
        return dense / 2.0 if self.causal else dense

    def kv_bytes(self):
        """Bytes of K and V with each kv head read once: what a decode step must at least read."""
        return 2.0 * self.batch * self.kv_heads * self.seq_k * self.head_dim * FLOAT_BYTES

    def moved_bytes(self):
        """Bytes of Q, K, V and O each moved once: the roofline's traffic (its least possible)."""
        q_or_out = float(self.batch * self.q_heads * self.seq_q * self.head_dim * FLOAT_BYTES)
        return 2.0 * q_or_out + self.kv_bytes()

    def arithmetic_intensity(self):
        """Useful FLOPs per byte of Q, K, V and O moved once."""
        return self.useful_flops() / self.moved_bytes()

    def is_decode(self):
        """A few queries against a long KV cache: bound by memory, judged by bandwidth_fraction."""
        return self.seq_q <= MAX_DECODE_QUERIES and self.seq_k > self.seq_q

    def describe(self):
        """One line: the sizes as docs/bench-shapes.md lists them."""
        mask = "causal" if self.causal else "dense"
        return (f"B {self.batch}, Hq {self.q_heads}, Hkv {self.kv_heads}, Sq {self.seq_q}, "
                f"Sk {self.seq_k}, D {self.head_dim}, {mask}")


# In the order of docs/bench-shapes.md (the bench runs them in this order too).
STANDARD_SHAPES = [
    Shape("encoder", 8, 12, 12, 512, 512, 64, False),
    Shape("prefill", 1, 32, 32, 2048, 2048, 128, True),
    Shape("prefill_gqa", 1, 32, 8, 2048, 2048, 128, True),
    Shape("long", 1, 8, 8, 16384, 16384, 64, False),
    Shape("decode_gqa", 1, 32, 8, 1, 8192, 128, False),
    Shape("decode_b8", 8, 32, 8, 1, 4096, 128, False),
]

SHAPES_BY_NAME = {shape.name: shape for shape in STANDARD_SHAPES}

# The shape whose thread scaling the bench measures (attention/<shape>/simd/threads:N).
SCALING_SHAPE = "encoder"


@dataclass(frozen=True)
class ServingShape:
    """A serving shape of docs/bench-shapes.md: a batch of sequences of different lengths, each
    (queries, keys), sharing the head configuration; causal is bottom-right within each sequence.
    simdattn_bench writes these into its JSON context ("serving_shapes"); serving_shapes() reads them."""
    name: str
    q_heads: int
    kv_heads: int
    head_dim: int
    block_size: int
    causal: bool
    sequences: tuple  # ((queries, keys), ...)

    def useful_flops(self):
        """4·Hq·D for every (query, key it sees) pair, as the bench counts them."""
        pairs = 0
        for queries, keys in self.sequences:
            if self.causal:
                # Query i (of `queries`, the last on the last key) sees min(keys, keys - queries + i + 1).
                pairs += sum(min(keys, keys - queries + i + 1) for i in range(queries))
            else:
                pairs += queries * keys
        return 4.0 * self.q_heads * self.head_dim * pairs

    def kv_bytes(self):
        """Bytes of K and V with each kv head read once (fp32)."""
        return 2.0 * self.kv_heads * self.head_dim * FLOAT_BYTES * sum(keys for _, keys in self.sequences)

    def is_decode(self):
        return all(queries <= MAX_DECODE_QUERIES for queries, _ in self.sequences)

    def per_sequence(self, index):
        """Sequence `index` as a one-batch Shape (what a peer called sequence by sequence computes)."""
        queries, keys = self.sequences[index]
        return Shape(f"{self.name}[{index}]", 1, self.q_heads, self.kv_heads, queries, keys, self.head_dim, self.causal)

    def describe(self):
        """One line: the sequences in a few numbers and the heads."""
        queries = [q for q, _ in self.sequences]
        keys = [k for _, k in self.sequences]
        span = lambda values: f"{min(values)}" if min(values) == max(values) else f"{min(values)}–{max(values)}"
        mask = "causal (bottom-right per sequence)" if self.causal else "dense"
        noun = "query" if max(queries) == 1 else "queries"
        return (f"{len(self.sequences)} sequences, {span(queries)} {noun} and {span(keys)} keys each "
                f"({sum(queries)} queries, {sum(keys)} keys in all), Hq {self.q_heads}, Hkv {self.kv_heads}, "
                f"D {self.head_dim}, {mask}")


def serving_shapes(context):
    """{name: ServingShape} from a simdattn_bench JSON context; {} when the bench wrote none."""
    text = context.get("serving_shapes") if context else None
    if not text:
        return {}
    shapes = {}
    for name, fields in json.loads(text).items():
        shapes[name] = ServingShape(name, int(fields["q_heads"]), int(fields["kv_heads"]), int(fields["head_dim"]),
                                    int(fields["block_size"]), bool(fields["causal"]),
                                    tuple((int(q), int(k)) for q, k in fields["sequences"]))
    return shapes
