"""No copies, in-place outputs, and errors that carry the library's message."""
from __future__ import annotations

import numpy as np
import pytest

import simdattn
from simdattn import _simdattn
from conftest import random_array


def test_the_core_sees_the_callers_memory(rng):
    buffer = random_array(rng, 2, 16, 3, 4, 32)
    view = buffer[:, 1:, 1]                               # strided, offset view: [2, 15, 4, 32]
    assert _simdattn.data_address(view) == view.ctypes.data
    assert _simdattn.data_address(buffer) == buffer.ctypes.data


def test_inputs_are_not_copied_the_library_sees_their_overlap(rng):
    # out and q are interleaved slices of one buffer: only if q reaches the library in place
    # can the library see the overlap (a copy of q would not overlap out).
    buffer = random_array(rng, 1, 8, 2, 2, 16)
    q, out = buffer[:, :, 0], buffer[:, :, 1]
    k = random_array(rng, 1, 8, 2, 16)
    with pytest.raises(ValueError, match=r"out must not overlap q"):
        simdattn.attention(q, k, k, out=out, layout="bshd")


def test_out_is_written_in_place_and_returned(rng):
    q = random_array(rng, 2, 3, 5, 8)
    out_buffer = np.full((2, 5, 3, 8), np.nan, dtype=np.float32)
    out = out_buffer.transpose(0, 2, 1, 3)                # a strided view as out
    result = simdattn.attention(q, q, q, out=out)
    assert result is out
    assert np.all(np.isfinite(out_buffer))
    assert np.array_equal(out, simdattn.attention(q, q, q))
    scores = np.zeros((2, 3, 5, 5), np.float32)
    assert simdattn.qk_scores(q, q, out=scores) is scores and np.any(scores != 0)


def test_read_only_inputs_are_accepted_and_read_only_outputs_refused(rng):
    q = random_array(rng, 1, 2, 3, 4)
    q.flags.writeable = False
    out = simdattn.attention(q, q, q)
    frozen = np.zeros_like(out)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="simdattn.attention: out must be writable"):
        simdattn.attention(q, q, q, out=frozen)


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.uint8, np.bool_])
def test_a_dtype_the_library_does_not_store_is_a_type_error(dtype):
    q = np.zeros((1, 1, 2, 4), dtype)
    with pytest.raises(TypeError, match=r"simdattn.attention: q must have dtype float32, bfloat16, "
                                        r"float16 or int8, got " + np.dtype(dtype).name):
        simdattn.attention(q, q, q)


def test_errors_name_the_argument_the_expected_and_the_actual_value(rng):
    q = random_array(rng, 2, 4, 5, 16)
    k = random_array(rng, 2, 4, 6, 8)
    with pytest.raises(ValueError, match=r"k.shape\[3\] \(head_dim\) must equal q.shape\[3\] = 16, got 8"):
        simdattn.attention(q, k, k)
    k = random_array(rng, 2, 3, 6, 16)
    with pytest.raises(ValueError, match=r"must divide .* = 4, got 3"):
        simdattn.attention(q, k, k)
    with pytest.raises(ValueError, match=r"q must have 4 dimensions, got 3"):
        simdattn.attention(q[0], q[0], q[0])
    with pytest.raises(ValueError, match=r"causal must be one of None, 'bottom_right', 'top_left', got 'upper'"):
        simdattn.attention(q, q, q, causal="upper")
    with pytest.raises(ValueError, match=r"layout must be one of 'bhsd', 'bshd', got 'sbhd'"):
        simdattn.attention(q, q, q, layout="sbhd")
    with pytest.raises(ValueError, match=r"options.softcap must be finite and >= 0 .* got -1"):
        simdattn.attention(q, q, q, softcap=-1.0)
    with pytest.raises(ValueError, match=r"options.num_threads must be >= 0 .* got -2"):
        simdattn.attention(q, q, q, num_threads=-2)
    with pytest.raises(ValueError, match=r"kv_lengths must be a 1-D sequence of 2 entries, got shape \(3,\)"):
        simdattn.attention(q, q, q, kv_lengths=[1, 2, 3])
    with pytest.raises(ValueError, match=r"options.kv_lengths\[1\] must be in \[0, 5\] .* got 9"):
        simdattn.attention(q, q, q, kv_lengths=[1, 9])
    with pytest.raises(TypeError, match=r"kv_lengths must hold integers, got dtype float64"):
        simdattn.attention(q, q, q, kv_lengths=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"options.weights requires options.algorithm .* got 2 \(fused\)"):
        simdattn.attention(q, q, q, return_weights=True, algorithm="fused")
    with pytest.raises(ValueError, match=r"q.strides\[3\] must be 1 .* got 2"):
        wide = random_array(rng, 2, 4, 5, 32)
        simdattn.attention(wide[..., ::2], q, q)
    with pytest.raises(ValueError, match=r"q.strides\[2\] must be >= 0, got -16"):
        simdattn.attention(q[:, :, ::-1], q, q)
    with pytest.raises(ValueError, match=r"out.shape\[3\] \(Dv\) must equal v.shape\[3\] = 16, got 8"):
        simdattn.attention(q, q, q, out=np.zeros((2, 4, 5, 8), np.float32))
    with pytest.raises(ValueError, match=r"window must be a pair \(left, right\), got 3"):
        simdattn.attention(q, q, q, window=3)
    with pytest.raises(TypeError, match=r"window left must be an int or None, got float 1.5"):
        simdattn.attention(q, q, q, window=(1.5, 0))
    with pytest.raises(ValueError, match=r"options.window_left must be >= -1 .* got -3"):
        simdattn.attention(q, q, q, window=(np.int64(-3), None))


def test_bshd_errors_say_how_dimensions_are_numbered(rng):
    q = random_array(rng, 2, 5, 4, 16)
    k = random_array(rng, 2, 5, 3, 16)
    with pytest.raises(ValueError, match=r"with layout='bshd'"):
        simdattn.attention(q, k, k, layout="bshd")


def test_arguments_that_are_not_arrays_are_type_errors():
    q = np.zeros((1, 1, 2, 4), np.float32)
    with pytest.raises(TypeError, match=r"simdattn.attention: k must be a numpy.ndarray or a torch.Tensor, got builtins.list"):
        simdattn.attention(q, [[[[0.0] * 4] * 2]], q)
    with pytest.raises(TypeError, match=r"num_threads must be an int, got float 2.0"):
        simdattn.attention(q, q, q, num_threads=2.0)
