"""python/bench/serving_vs_torch.py on small batches: its simdattn calls (paged and packed) and
its sequence-by-sequence torch SDPA calls compute the same attention, so the script's
agreement check, which gates its timings, passes for the right reason and fails for a wrong
one."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "serving_vs_torch.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("serving_vs_torch", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("layout", ["paged", "packed"])
def test_simdattn_and_torch_per_sequence_agree(script, layout):
    # A decode row, a chunk over a cached prefix, a fresh prompt, and a page edge (33 keys).
    batch = script.Batch([(1, 40), (5, 37), (9, 9), (1, 33)], torch.Generator().manual_seed(3))
    with torch.no_grad():
        batch.simdattn_call(layout, 2)
        assert batch.largest_difference(batch.torch_call()) < 1e-5
        batch.out.add_(1e-3)                        # a wrong result must be seen as one
        assert batch.largest_difference(batch.torch_call()) > 5e-4
