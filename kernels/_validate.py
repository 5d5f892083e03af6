"""Argument checks shared by the kernels' Python wrappers.

Kernels trust their inputs; these helpers are the boundary. Input columns of
any integer width are converted to int64 (a no-op when they already are);
state arrays that a kernel updates in place must already be int64 and
C-contiguous, because converting them would silently update a copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._jit import jit


def int64_column(name: str, values: Any, length: int | None = None) -> np.ndarray:
    """Return ``values`` as a 1-D contiguous int64 array, or raise TypeError/ValueError."""
    array = np.asarray(values)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must be an integer array, got dtype {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if length is not None and array.size != length:
        raise ValueError(f"{name} has {array.size} rows, expected {length} (all columns share one length)")
    if array.dtype == np.uint64 and array.size and array.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name} holds values above the int64 range")
    return np.ascontiguousarray(array, dtype=np.int64)


def int64_setting(name: str, value: Any, length: int) -> np.ndarray:
    """A scalar or per-row integer setting as a 1-D int64 column.

    A scalar becomes a read-only zero-stride view (no allocation, no copy).
    """
    if np.ndim(value) == 0:
        scalar = np.asarray(value)
        if scalar.dtype == np.bool_ or not np.issubdtype(scalar.dtype, np.integer):
            raise TypeError(f"{name} must be an integer (milliseconds), got {value!r}")
        return np.broadcast_to(scalar.astype(np.int64), (length,))
    return int64_column(name, value, length)


def float64_array(name: str, values: Any) -> np.ndarray:
    """Return ``values`` as a float64 array (any shape) or raise TypeError."""
    array = np.asarray(values)
    if array.dtype == np.bool_ or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise TypeError(f"{name} must be numeric, got dtype {array.dtype}")
    return array.astype(np.float64, copy=False)


def state_array(name: str, array: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Check an in-place state array: int64, C-contiguous, writeable, exact ``shape``."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(array).__name__}")
    if array.dtype != np.int64:
        raise TypeError(f"{name} must have dtype int64, got {array.dtype}")
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    if not array.flags.c_contiguous or not array.flags.writeable:
        raise ValueError(f"{name} must be C-contiguous and writeable (use numpy.ascontiguousarray)")
    return array


def row_groups(offsets: Any, rows: Any, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate a CSR grouping of state rows.

    Group ``g`` is ``rows[offsets[g]:offsets[g + 1]]``; ``offsets`` starts at 0,
    never decreases and ends at ``len(rows)``; every row is in ``[0, n_rows)``.
    ``offsets=None`` and ``rows=None`` mean "every row is its own group".
    """
    if offsets is None and rows is None:
        return np.arange(n_rows + 1, dtype=np.int64), np.arange(n_rows, dtype=np.int64)
    if offsets is None or rows is None:
        raise ValueError("give both offsets and rows, or neither (one group per row)")
    offsets = int64_column("offsets", offsets)
    rows = int64_column("rows", rows)
    if offsets.size == 0 or offsets[0] != 0 or offsets[-1] != rows.size:
        raise ValueError("offsets must start at 0 and end at len(rows)")
    if offsets.size > 1 and np.any(np.diff(offsets) < 0):
        raise ValueError("offsets must not decrease")
    bad = _first_outside(rows, 0, n_rows)
    if bad >= 0:
        raise ValueError(f"rows[{bad}] = {rows[bad]} is not a state row (expected 0 <= row < {n_rows})")
    return offsets, rows


@jit
def _first_outside(values, low, high):
    """Index of the first value outside ``[low, high)``, or -1."""
    for i in range(values.size):
        if values[i] < low or values[i] >= high:
            return i
    return -1


def first_outside(values: np.ndarray, low: int, high: int) -> int:
    """Index of the first int64 value outside ``[low, high)``, or -1."""
    return int(_first_outside(values, low, high))
