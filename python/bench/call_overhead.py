#!/usr/bin/env python3
"""What a Python call of simdattn.attention costs on top of the C++ call, on a tiny shape.

The C++ time is simdattn::attention called in a loop inside the extension (no Python between
calls); the Python times are simdattn.attention called in a Python loop on the same arrays:
NumPy with the result allocated, NumPy with out=, and PyTorch tensors likewise. Each figure is
the best of --repeat runs of --calls calls (the least disturbed by other work on the machine).

    python python/bench/call_overhead.py [--calls 20000] [--repeat 7] [--limit-us 5]

Exit status 1 when the NumPy overhead (result allocated) exceeds --limit-us.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import simdattn
from simdattn import _simdattn


def best_seconds_per_call(function, calls: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--limit-us", type=float, default=5.0)
    parser.add_argument("--shape", type=int, nargs=4, default=[1, 1, 4, 16],
                        metavar=("B", "H", "S", "D"))
    arguments = parser.parse_args()
    q = np.random.default_rng(0).standard_normal(arguments.shape).astype(np.float32)
    out = np.empty_like(q)
    calls, repeat = arguments.calls, arguments.repeat

    cpp = min(_simdattn.seconds_per_cpp_call(q, q, q, out, calls) for _ in range(repeat))
    rows = [("C++ simdattn::attention", cpp)]
    rows.append(("Python, NumPy", best_seconds_per_call(lambda: simdattn.attention(q, q, q),
                                                         calls, repeat)))
    rows.append(("Python, NumPy, out=", best_seconds_per_call(
        lambda: simdattn.attention(q, q, q, out=out), calls, repeat)))
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        tq = torch.from_numpy(q.copy())
        tout = torch.empty_like(tq)
        rows.append(("Python, torch", best_seconds_per_call(lambda: simdattn.attention(tq, tq, tq),
                                                            calls, repeat)))
        rows.append(("Python, torch, out=", best_seconds_per_call(
            lambda: simdattn.attention(tq, tq, tq, out=tout), calls, repeat)))

    print(f"simdattn {simdattn.__version__} ({simdattn.active_isa()}), shape "
          f"{tuple(arguments.shape)}, best of {repeat} x {calls} calls")
    print(f"{'call':28} {'us/call':>8} {'over C++':>9}")
    for name, seconds in rows:
        print(f"{name:28} {seconds * 1e6:8.2f} {(seconds - cpp) * 1e6:+9.2f}")
    numpy_overhead = (rows[1][1] - cpp) * 1e6
    if numpy_overhead > arguments.limit_us:
        print(f"FAIL: a NumPy call costs {numpy_overhead:.2f} us more than the C++ call, limit "
              f"{arguments.limit_us} us")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
