"""Array kinds: what simdattn accepts (NumPy arrays, PyTorch CPU tensors) and how it allocates
results of the same kind as the inputs. PyTorch is never imported here: a tensor can only exist
if the caller has imported it already."""
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


def check_float32(function: str, name: str, array: Any, kind: str, ndim: int | None = 4) -> None:
    """TypeError unless the array is float32 on the CPU; ValueError unless it has `ndim` dims."""
    if kind == "numpy":
        if array.dtype != np.float32:
            raise TypeError(f"{function}: {name} must have dtype float32 (the only one simdattn "
                            f"computes in today), got {array.dtype}")
    else:
        import torch

        if array.dtype != torch.float32:
            raise TypeError(f"{function}: {name} must have dtype torch.float32 (the only one "
                            f"simdattn computes in today), got {array.dtype}")
        if not array.is_cpu:
            raise TypeError(f"{function}: {name} must be on the CPU, got device {array.device}")
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{function}: {name} must have {ndim} dimensions, got {array.ndim} "
                         f"(shape {tuple(array.shape)})")


def check_writable(function: str, name: str, array: Any, kind: str) -> None:
    """ValueError when an output NumPy array is read-only (a broadcast view, a frozen array)."""
    if kind == "numpy" and not array.flags.writeable:
        raise ValueError(f"{function}: {name} must be writable, got a read-only array")


def empty(kind: str, shape: Sequence[int]) -> Any:
    """An uninitialised contiguous float32 array of the kind."""
    if kind == "numpy":
        return np.empty(shape, dtype=np.float32)
    import torch

    return torch.empty(tuple(shape), dtype=torch.float32)


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
    the view, and refuses tensors that record gradients."""
    if kind == "torch":
        return (array.detach() if array.requires_grad else array).numpy()
    return array


def int64_vector(function: str, name: str, values: Any, length: int) -> np.ndarray:
    """A small option array (kv_lengths) as contiguous int64, with `length` entries."""
    return _vector(function, name, values, length, np.int64, "iu", "integers")


def float32_vector(function: str, name: str, values: Any, length: int) -> np.ndarray:
    """A small option array (alibi_slopes) as contiguous float32, with `length` entries."""
    return _vector(function, name, values, length, np.float32, "fiu", "real numbers")


def _vector(function: str, name: str, values: Any, length: int, dtype: Any, kinds: str,
            meaning: str) -> np.ndarray:
    tensor_type = _torch_tensor_type()
    if tensor_type is not None and isinstance(values, tensor_type):
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.dtype.kind not in kinds:
        raise TypeError(f"{function}: {name} must hold {meaning}, got dtype {array.dtype}")
    if array.ndim != 1 or array.shape[0] != length:
        raise ValueError(f"{function}: {name} must be a 1-D sequence of {length} entries, got "
                         f"shape {array.shape}")
    return np.ascontiguousarray(array, dtype=dtype)


def shape_tuple(array: Any) -> Tuple[int, ...]:
    return tuple(int(size) for size in array.shape)
