#!/usr/bin/env python3
"""simdattn from Python: ctypes over the shared library's C ABI (simdattn.h) and NumPy arrays.

Runs attention on NumPy arrays without copying them (a BSHD array is passed as a strided view),
compares the result with a NumPy implementation, times both, and shows an error being reported.

    python3 simdattn_ctypes.py [path/to/libsimdattn.so]

The library is found, in order: the first argument, $SIMDATTN_LIBRARY, the system's search path.
Exit status: 0 when simdattn agrees with NumPy, 1 when it does not, 77 (skip) without NumPy.
"""
import ctypes
import ctypes.util
import os
import sys
import time

try:
    import numpy as np
except ImportError:  # Debian: python3-numpy
    print("NumPy is not installed for", sys.executable, "- skipping")
    sys.exit(77)


# --- The C ABI, declared once (the field order is the ABI: keep it as in simdattn.h) ---

class Tensor(ctypes.Structure):
    """simdattn_tensor: a [batch, heads, seq, head_dim] view, strides in elements."""
    _fields_ = [("data", ctypes.c_void_p), ("dtype", ctypes.c_int32),
                ("shape", ctypes.c_int64 * 4), ("strides", ctypes.c_int64 * 4)]


class Options(ctypes.Structure):
    """simdattn_options; fill it with simdattn_options_init before setting fields."""
    _fields_ = [("struct_size", ctypes.c_size_t), ("scale", ctypes.c_float),
                ("causal", ctypes.c_int32), ("window_left", ctypes.c_int64),
                ("window_right", ctypes.c_int64), ("mask", ctypes.POINTER(Tensor)),
                ("kv_lengths", ctypes.POINTER(ctypes.c_int64)), ("softcap", ctypes.c_float),
                ("alibi_slopes", ctypes.POINTER(ctypes.c_float)), ("weights", ctypes.POINTER(Tensor)),
                ("lse", ctypes.POINTER(Tensor)), ("num_threads", ctypes.c_int32),
                ("algorithm", ctypes.c_int32)]


SIMDATTN_OK, SIMDATTN_ERR_INVALID_ARGUMENT = 0, 1
SIMDATTN_F32 = 0
SIMDATTN_CAUSAL_BOTTOM_RIGHT = 1


def load_library(path):
    """The shared library with argument and result types declared for every function used."""
    path = path or os.environ.get("SIMDATTN_LIBRARY") or ctypes.util.find_library("simdattn")
    if not path:
        sys.exit("libsimdattn.so not found: pass its path or set SIMDATTN_LIBRARY")
    lib = ctypes.CDLL(path)
    tensor_p = ctypes.POINTER(Tensor)
    lib.simdattn_options_init.argtypes = [ctypes.POINTER(Options)]
    lib.simdattn_options_init.restype = None
    lib.simdattn_attention.argtypes = [tensor_p, tensor_p, tensor_p, tensor_p, ctypes.POINTER(Options)]
    lib.simdattn_attention.restype = ctypes.c_int
    for name in ("simdattn_last_error", "simdattn_version", "simdattn_active_isa"):
        getattr(lib, name).argtypes = []
        getattr(lib, name).restype = ctypes.c_char_p
    return lib


def as_tensor(array):
    """A simdattn_tensor viewing a 4-D float32 NumPy array in place (any strides, last one 1).

    The array must outlive every call that uses the tensor: ctypes keeps only its address."""
    if array.dtype != np.float32 or array.ndim != 4:
        raise TypeError(f"need a 4-D float32 array, got {array.ndim}-D {array.dtype}")
    if array.strides[3] != array.itemsize:
        raise ValueError("the last dimension must be contiguous")
    return Tensor(array.ctypes.data, SIMDATTN_F32, (ctypes.c_int64 * 4)(*array.shape),
                  (ctypes.c_int64 * 4)(*(s // array.itemsize for s in array.strides)))


def attention(lib, q, k, v, out, causal=0):
    """out ← attention(q, k, v) through the C ABI; raises RuntimeError with the library's message."""
    options = Options()
    lib.simdattn_options_init(ctypes.byref(options))
    options.causal = causal
    tensors = [as_tensor(a) for a in (q, k, v, out)]
    status = lib.simdattn_attention(*(ctypes.byref(t) for t in tensors), ctypes.byref(options))
    if status != SIMDATTN_OK:
        raise RuntimeError(f"status {status}: {lib.simdattn_last_error().decode()}")


def numpy_attention(q, k, v, causal=False):
    """softmax(q·kᵀ/sqrt(d) [+ bottom-right causal mask]) · v in NumPy, in q's dtype."""
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1]).astype(q.dtype)
    if causal:
        sq, sk = scores.shape[-2:]
        visible = np.arange(sk)[None, :] <= np.arange(sq)[:, None] + (sk - sq)
        scores = np.where(visible, scores, -np.inf)
    scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return (scores / scores.sum(axis=-1, keepdims=True)) @ v


def best_time(call, repeats=5):
    """The fastest of `repeats` runs of call(), in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    lib = load_library(sys.argv[1] if len(sys.argv) > 1 else None)
    print(f"simdattn {lib.simdattn_version().decode()}, kernels for {lib.simdattn_active_isa().decode()}")

    batch, heads, seq, dim = 1, 8, 256, 64
    rng = np.random.default_rng(7)
    # Projections produce [batch, seq, heads, dim] (BSHD); transposing gives a BHSD *view* of the
    # same memory, which simdattn reads through its strides without a copy.
    q_bshd, k_bshd, v_bshd = (rng.standard_normal((batch, seq, heads, dim), dtype=np.float32)
                              for _ in range(3))
    q, k, v = (a.transpose(0, 2, 1, 3) for a in (q_bshd, k_bshd, v_bshd))
    out = np.empty((batch, heads, seq, dim), dtype=np.float32)

    failures = 0
    for causal in (False, True):
        attention(lib, q, k, v, out, SIMDATTN_CAUSAL_BOTTOM_RIGHT if causal else 0)
        expected = numpy_attention(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64),
                                   causal)
        difference = float(np.max(np.abs(out - expected)))
        # float32 against float64 over 256 keys of head_dim 64: rounding stays near 1e-6.
        ok = difference <= 1e-4
        failures += not ok
        print(f"causal={causal!s:5}  max |simdattn - NumPy float64| = {difference:.1e}"
              f" {'(ok)' if ok else 'MISMATCH'}")

    q32, k32, v32 = (np.ascontiguousarray(a) for a in (q, k, v))  # NumPy's fastest case
    simd_seconds = best_time(lambda: attention(lib, q, k, v, out))
    numpy_seconds = best_time(lambda: numpy_attention(q32, k32, v32))
    flops = 4.0 * batch * heads * seq * seq * dim
    print(f"batch {batch}, heads {heads}, seq {seq}, head_dim {dim}:")
    print(f"  simdattn (ctypes)  {simd_seconds * 1e3:8.3f} ms  {flops / simd_seconds / 1e9:7.2f} GFLOP/s")
    print(f"  NumPy float32      {numpy_seconds * 1e3:8.3f} ms  {flops / numpy_seconds / 1e9:7.2f} GFLOP/s")
    print(f"  speedup {numpy_seconds / simd_seconds:.1f}x")

    # Errors come back as a status and a message; nothing is written to the output.
    try:
        attention(lib, q, k[..., :32], v, out)
        print("MISMATCH: a key head_dim of 32 against queries of 64 was accepted")
        failures += 1
    except RuntimeError as error:
        print(f"deliberate error reported: {error}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
