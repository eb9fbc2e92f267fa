"""Array kinds: what simdattn accepts (NumPy arrays, PyTorch CPU tensors) and how it allocates
results of the same kind as the inputs. PyTorch is never imported here: a tensor can only exist
if the caller has imported it already.

Dtypes are named as NumPy and PyTorch name them: "float32", "bfloat16" (PyTorch only: NumPy has
none), "float16" and "int8". Which dtype fits which argument is the library's to check (its
message then says why); the compiled core refuses every other dtype with a TypeError."""
from __future__ import annotations

import sys
from typing import Any, Sequence, Tuple

import numpy as np


def _torch_tensor_type() -> Any:
    torch = sys.modules.get("torch")
    return None if torch is None else torch.Tensor


def kind_of(function: str, **arrays: Any) -> str:
    """'numpy' or 'torch': the kind shared by all named arrays (None entries are skipped).

    Raises TypeError when an argument is neither, or when the kinds differ; the message names
    the function, the argument, what was expected and what was given."""
    kind = None
    first = None
    for name, array in arrays.items():
        if array is None:
            continue
        if isinstance(array, np.ndarray):
            this = "numpy"
        else:
            tensor_type = _torch_tensor_type()
            if tensor_type is not None and isinstance(array, tensor_type):
                this = "torch"
            else:
                raise TypeError(f"{function}: {name} must be a numpy.ndarray or a torch.Tensor, "
                                f"got {type(array).__module__}.{type(array).__qualname__}")
        if kind is None:
            kind, first = this, name
        elif this != kind:
            raise TypeError(f"{function}: {name} must be of the same kind as {first} "
                            f"({kind}), got {this}")
    return kind or "numpy"


FLOATING_DTYPES = ("float32", "bfloat16", "float16")


def check_array(function: str, name: str, array: Any, kind: str, ndim: int | None = 4) -> None:
    """TypeError unless a tensor is on the CPU; ValueError unless the array has `ndim` dims.
    (The dtype is checked by the compiled core and the library.)"""
    if kind == "torch" and not array.is_cpu:
        raise TypeError(f"{function}: {name} must be on the CPU, got device {array.device}")
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{function}: {name} must have {ndim} dimensions, got {array.ndim} "
                         f"(shape {tuple(array.shape)})")


def check_writable(function: str, name: str, array: Any, kind: str) -> None:
    """ValueError when an output NumPy array is read-only (a broadcast view, a frozen array)."""
    if kind == "numpy" and not array.flags.writeable:
        raise ValueError(f"{function}: {name} must be writable, got a read-only array")


def dtype_name(array: Any) -> str:
    """"float32", "bfloat16", "int8", ...: the array's dtype without a "torch." prefix."""
    if isinstance(array, np.ndarray):
        return array.dtype.name
    return str(array.dtype).replace("torch.", "")


def result_dtype(array: Any) -> str:
    """The dtype of a result computed from `array` (q, or a state to merge): the array's own when
    it is a floating dtype the library writes, float32 otherwise (the library then rejects the
    input with its own message, rather than the result)."""
    name = dtype_name(array)
    return name if name in FLOATING_DTYPES else "float32"


def resolve_dtype(function: str, name: str, dtype: Any, kind: str) -> str:
    """A result dtype the caller asked for (a string, a NumPy dtype or type, a torch.dtype) as
    one of FLOATING_DTYPES; TypeError for any other, and for bfloat16 with NumPy arrays."""
    if isinstance(dtype, str):
        text = dtype
    elif type(dtype).__module__ == "torch":      # torch.dtype
        text = str(dtype).replace("torch.", "")
    else:
        try:
            text = np.dtype(dtype).name
        except TypeError:
            text = repr(dtype)
    if text not in FLOATING_DTYPES:
        raise TypeError(f"{function}: {name} must be float32, bfloat16 or float16, got {text}")
    if text == "bfloat16" and kind == "numpy":
        raise TypeError(f"{function}: {name} bfloat16 needs PyTorch tensors (NumPy has no "
                        f"bfloat16 dtype)")
    return text


def empty(kind: str, shape: Sequence[int], dtype: str = "float32") -> Any:
    """An uninitialised contiguous array of the kind, of dtype "float32", "bfloat16" (torch
    only), "float16" or "int8"."""
    if kind == "numpy":
        return np.empty(shape, dtype=dtype)
    import torch

    return torch.empty(tuple(shape), dtype=getattr(torch, dtype))


_FLOAT32 = np.dtype(np.float32)


def all_plain_float32(arrays: Sequence[Any], ndim: int = 4) -> bool:
    """True when every array is a float32 numpy.ndarray with `ndim` dimensions: the common case,
    checked cheaply so that a call on a tiny shape costs little more than the library's own."""
    for array in arrays:
        if type(array) is not np.ndarray or array.dtype is not _FLOAT32 or array.ndim != ndim:
            return False
    return True


def all_plain_torch_float32(arrays: Sequence[Any], ndim: int = 4) -> bool:
    """The same for float32 CPU torch.Tensor objects (torch already imported by the caller)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    tensor_type = torch.Tensor
    for array in arrays:
        if (type(array) is not tensor_type or array.dtype is not torch.float32
                or not array.is_cpu or array.ndim != ndim):
            return False
    return True


def for_core(array: Any, kind: str) -> Any:
    """What the compiled core receives: the array itself, or for a tensor a NumPy view of the
    same memory (tensor.numpy() shares the storage; nothing is copied). The core would also take
    the tensor through DLPack, but exporting a tensor that way costs about 3 µs against 1 µs for
    the view, and refuses tensors that record gradients. A bfloat16 tensor has no NumPy view
    (NumPy has no bfloat16), so it goes through DLPack, which shares the storage too."""
    if kind == "torch":
        tensor = array.detach() if array.requires_grad else array
        try:
            return tensor.numpy()
        except TypeError:                        # bfloat16 and other dtypes NumPy lacks
            return tensor
    return array


def int64_vector(function: str, name: str, values: Any, length: int) -> np.ndarray:
    """A small option array (kv_lengths) as contiguous int64, with `length` entries."""
    return _vector(function, name, values, length, np.int64, "iu", "integers")


def float32_vector(function: str, name: str, values: Any, length: int) -> np.ndarray:
    """A small option array (alibi_slopes, sinks) as contiguous float32, with `length` entries.
    Any real dtype is accepted (bfloat16 tensors too) and rounded to float32."""
    return _vector(function, name, values, length, np.float32, "fiu", "real numbers")


_INT32_RANGE = (-2**31, 2**31 - 1)


def int32_array(function: str, name: str, values: Any, ndim: int, meaning: str) -> np.ndarray:
    """The serving layouts' index arrays (cu_seqlens, seq_lens, block_table) as contiguous int32,
    as the library reads them: any integer array, tensor or nested sequence of `ndim` dimensions
    (`meaning` names them in the message). A value outside int32 is a ValueError, never wrapped.
    An array that is already contiguous int32 NumPy is passed on as is."""
    tensor_type = _torch_tensor_type()
    if tensor_type is not None and isinstance(values, tensor_type):
        torch = sys.modules["torch"]
        if values.is_floating_point() or values.is_complex() or values.dtype == torch.bool:
            raise TypeError(f"{function}: {name} must hold integers, got dtype "
                            f"{str(values.dtype).replace('torch.', '')}")
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.dtype.kind not in "iu" and not (array.size == 0 and array.dtype.kind == "f"):
        raise TypeError(f"{function}: {name} must hold integers, got dtype {array.dtype}")
    if array.ndim != ndim:
        raise ValueError(f"{function}: {name} must have {ndim} dimension{'s' * (ndim > 1)} "
                         f"{meaning}, got shape {array.shape}")
    if array.dtype != np.int32 and array.size:
        low, high = int(array.min()), int(array.max())
        if low < _INT32_RANGE[0] or high > _INT32_RANGE[1]:
            bad = low if low < _INT32_RANGE[0] else high
            raise ValueError(f"{function}: {name} must hold int32 values, in [{_INT32_RANGE[0]}, "
                             f"{_INT32_RANGE[1]}], got {bad}")
    return np.ascontiguousarray(array, dtype=np.int32)


def _vector(function: str, name: str, values: Any, length: int, dtype: Any, kinds: str,
            meaning: str) -> np.ndarray:
    tensor_type = _torch_tensor_type()
    if tensor_type is not None and isinstance(values, tensor_type):
        values = values.detach().cpu()
        try:
            values = values.numpy()
        except TypeError:                        # bfloat16 (NumPy has none): widening is exact
            if not values.is_floating_point():
                raise TypeError(f"{function}: {name} must hold {meaning}, got dtype "
                                f"{str(values.dtype).replace('torch.', '')}") from None
            values = values.float().numpy()
    array = np.asarray(values)
    if array.dtype.kind not in kinds:
        raise TypeError(f"{function}: {name} must hold {meaning}, got dtype {array.dtype}")
    if array.ndim != 1 or array.shape[0] != length:
        raise ValueError(f"{function}: {name} must be a 1-D sequence of {length} entries, got "
                         f"shape {array.shape}")
    return np.ascontiguousarray(array, dtype=dtype)


def shape_tuple(array: Any) -> Tuple[int, ...]:
    return tuple(int(size) for size in array.shape)
