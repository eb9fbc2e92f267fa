"""convert() and quantize_rows(): filling 16-bit and int8 caches from float32 (and reading 16-bit
results back), on the library's conversion kernels. Argument kinds are checked and results
allocated here; the library checks everything else and raises its message."""
from __future__ import annotations

import operator
from typing import Any, Tuple

from . import _arrays
from . import _simdattn


def convert(source: Any, destination: Any, dtype: Any) -> Any:
    function = "simdattn.convert"
    kind = _arrays.kind_of(function, source=source, destination=destination)
    _arrays.check_array(function, "source", source, kind, ndim=None)
    if destination is None:
        if dtype is None:
            raise ValueError(f"{function}: give destination or dtype (the destination's), got "
                             f"neither")
        resolved = _arrays.resolve_dtype(function, "dtype", dtype, kind)
        destination = _arrays.empty(kind, _arrays.shape_tuple(source), resolved)
    else:
        if dtype is not None:
            raise ValueError(f"{function}: give destination or dtype, not both")
        _arrays.check_array(function, "destination", destination, kind, ndim=None)
        _arrays.check_writable(function, "destination", destination, kind)
    _simdattn.convert(_arrays.for_core(source, kind), _arrays.for_core(destination, kind))
    return destination


def quantize_rows(source: Any, destination: Any, scales: Any, groups: Any) -> Tuple[Any, Any]:
    function = "simdattn.quantize_rows"
    kind = _arrays.kind_of(function, source=source, destination=destination, scales=scales)
    _arrays.check_array(function, "source", source, kind, ndim=None)
    shape = _arrays.shape_tuple(source)
    if destination is None:
        destination = _arrays.empty(kind, shape, "int8")
    else:
        _arrays.check_array(function, "destination", destination, kind, ndim=None)
        _arrays.check_writable(function, "destination", destination, kind)
    if scales is None:
        try:
            if isinstance(groups, bool):
                raise TypeError
            groups = operator.index(groups)
        except TypeError:
            raise TypeError(f"{function}: groups must be an int, got {type(groups).__name__} "
                            f"{groups!r}") from None
        if groups < 1:
            raise ValueError(f"{function}: groups (scales per row) must be >= 1, got {groups}")
        scales = _arrays.empty(kind, shape[:-1] + (groups,))
    else:
        _arrays.check_array(function, "scales", scales, kind, ndim=None)
        _arrays.check_writable(function, "scales", scales, kind)
    _simdattn.quantize_rows(_arrays.for_core(source, kind), _arrays.for_core(destination, kind),
                            _arrays.for_core(scales, kind))
    return destination, scales
