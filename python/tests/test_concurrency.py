"""The GIL is released while the library computes, many Python threads may call at once, and
a forked child process can still call simdattn."""
from __future__ import annotations

import multiprocessing
import threading
import time

import numpy as np
import pytest

import simdattn
from conftest import random_array


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_the_gil_is_released_during_a_long_call(dtype, rng):
    # A long single-threaded call; meanwhile a pure-Python thread (which needs the GIL) records
    # when it runs. With the GIL held for the whole call, it could not run in its middle half.
    # float16 and int8 (an f16 q over an int8 cache) take the same path through the core.
    q = random_array(rng, 1, 16, 1024, 64)
    k = v = q
    options = {}
    if dtype != "float32":
        q = q.astype(np.float16)
        k = v = q
    if dtype == "int8":
        k, scales = simdattn.quantize_rows(q)
        v = k
        options = dict(k_scale=scales, v_scale=scales)
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.0005)

    simdattn.attention(q, k, v, num_threads=1, **options)  # warm up: scratch, thread pool
    thread = threading.Thread(target=ticker)
    thread.start()
    time.sleep(0.01)
    start = time.perf_counter()
    simdattn.attention(q, k, v, num_threads=1, **options)
    end = time.perf_counter()
    stop.set()
    thread.join()
    duration = end - start
    assert duration > 0.02, f"the call took {duration:.4f} s: too short to tell"
    middle = [t for t in ticks if start + duration / 4 < t < end - duration / 4]
    assert middle, (f"no Python thread ran during the middle half of a {duration:.3f} s call: "
                    f"the GIL was held")


def test_many_python_threads_at_once(rng):
    inputs = [tuple(random_array(rng, 2, 4, 33, 32) for _ in range(3)) for _ in range(8)]
    expected = [simdattn.attention(q, k, v, causal="bottom_right") for q, k, v in inputs]
    results = [None] * len(inputs)
    errors = []
    barrier = threading.Barrier(len(inputs))

    def worker(index):
        try:
            barrier.wait()
            q, k, v = inputs[index]
            for _ in range(20):
                out = simdattn.attention(q, k, v, causal="bottom_right", num_threads=2)
            results[index] = out
        except Exception as error:  # reported below, with the thread's index
            errors.append((index, error))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    for index, (result, wanted) in enumerate(zip(results, expected)):
        assert result is not None, f"thread {index} did not finish"
        assert np.array_equal(result, wanted), f"thread {index}: result differs"


def _child_call(queue):
    q = np.ones((1, 4, 64, 32), np.float32)
    out = simdattn.attention(q, q, q, num_threads=2)
    queue.put(float(out.sum()))


def test_a_forked_child_does_not_hang(rng):
    # The parent starts OpenMP's thread pool first; a child forked afterwards must still compute.
    q = random_array(rng, 2, 8, 256, 64)
    simdattn.attention(q, q, q, num_threads=2)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_call, args=(queue,))
    child.start()
    child.join(timeout=20)
    if child.is_alive():
        child.kill()
        child.join()
        pytest.fail("a child forked after the parent used simdattn hung for 20 s in "
                    "simdattn.attention (OpenMP's thread pool does not survive fork)")
    assert child.exitcode == 0, f"the forked child exited with {child.exitcode}"
    assert queue.get(timeout=5) == pytest.approx(4 * 64 * 32)
