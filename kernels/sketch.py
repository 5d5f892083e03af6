"""Wait-time sketches: many fixed-size count rows that merge by addition and serialise compactly.

Storage
-------
:class:`Sketches` holds ``n`` sketches as two int64 arrays with one row per
sketch (e.g. one per queue pane)::

    buckets  (n, spec.n_buckets)     one count per bucket (see kernels.mapping)
    summary  (n, 3 + spec.n_octaves) zero, underflow, overflow counts and the
                                     total of every octave's buckets

Every column of both is a count, so sketches merge by addition. The summary
is a dense index over the buckets: a quantile query reads a few summary cells,
then only the buckets of the octave holding the answer, so asking 100 000 mostly
empty sketches costs one pass over a small dense array instead of a walk over
a gigabyte of buckets.

Rank rule
---------
For ``n`` values and quantile ``q`` in [0, 1] the answer is the value of 0-based
rank ``floor((n - 1) * q)`` in ascending order (computed in float64), i.e.
``numpy.quantile(values, q, method="lower")``. Every quantile in callslo uses it.
The answer is within relative accuracy ``spec.alpha`` of that value when it is
inside the spec's range, exactly 0 for 0, and ``spec.min_value`` /
``spec.max_value`` when the rank falls in the underflow / overflow bucket.
An empty sketch answers NaN.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from . import _codec
from ._jit import jit, prefetch
from ._validate import first_outside, float64_array, int64_column, row_groups, state_array
from .mapping import (
    DEFAULT_SPEC,
    OCTAVE_COL,
    OVERFLOW_COL,
    UNDERFLOW_COL,
    ZERO_COL,
    SketchSpec,
    add_value,
    bucket_of,
)

__all__ = ["DEFAULT_QUANTILES", "Sketches", "WaitSketch", "quantile_rank"]

DEFAULT_QUANTILES = (0.5, 0.9, 0.95, 0.99)

_PREFETCH_DISTANCE = 8  # answers between prefetching an octave's buckets and scanning them
_INT64_PER_LINE = 8  # counts per 64-byte cache line

_MAGIC = b"CSWS"
_VERSION = 1
_HEADER = "dddQ"  # alpha, min_value, max_value, n_rows


def quantile_rank(n: int, q: float) -> int:
    """0-based rank answered for quantile ``q`` of ``n`` values (the rank rule)."""
    return int(math.floor((n - 1) * q))


# --- kernels ---------------------------------------------------------------


@jit
def _insert_rows(summary, buckets, rows, values, geometry):
    """Count ``values[i]`` in row ``rows[i]``; stop at a negative or NaN value.

    On such a value everything inserted so far is taken out again (counts are
    exact, so this restores the arrays), making the call all-or-nothing in a
    single pass. Returns the bad value's index, or -1.
    """
    for i in range(values.size):
        value = np.float64(values[i])
        if not value >= 0.0:
            for j in range(i):
                add_value(summary, buckets, rows[j], np.float64(values[j]), geometry, -1)
            return i
        add_value(summary, buckets, rows[i], value, geometry, 1)
    return -1


@jit
def _insert_one(summary, buckets, values, geometry):
    """:func:`_insert_rows` into row 0, faster for one sketch.

    Waits cluster in a few octaves, so incrementing the octave total per value
    would chain every update on the same few counters; the loop counts buckets
    only and the octave totals are added from them at the end.
    """
    _, _, _, sub_buckets, n_octaves = geometry
    before = buckets[0].copy()
    bad = -1
    for i in range(values.size):
        value = np.float64(values[i])
        if not value >= 0.0:
            bad = i
            break
        col, bucket = bucket_of(value, geometry)
        if bucket >= 0:
            buckets[0, bucket] += 1
        else:
            summary[0, col] += 1
    if bad >= 0:
        for j in range(bad):
            col, bucket = bucket_of(np.float64(values[j]), geometry)
            if bucket < 0:
                summary[0, col] -= 1
        buckets[0, :] = before
        return bad
    for octave in range(n_octaves):
        added = np.int64(0)
        for step in range(octave * sub_buckets, (octave + 1) * sub_buckets):
            added += buckets[0, step] - before[step]
        summary[0, OCTAVE_COL + octave] += added
    return -1


@jit
def merge_groups(counts, offsets, rows, out):
    """Add the rows of each CSR group of ``counts`` into ``out[group]``."""
    width = counts.shape[1]
    for group in range(offsets.size - 1):
        for t in range(offsets[group], offsets[group + 1]):
            row = rows[t]
            for col in range(width):
                out[group, col] += counts[row, col]


@jit
def _group_quantiles(summary, buckets, offsets, rows, qs, bucket_values, geometry, out):
    """Answer ascending ``qs`` for every CSR group of rows into ``out``."""
    min_value, max_value, _, sub_buckets, n_octaves = geometry
    n_qs = qs.size
    # Pass 1 reads only the dense summary: it answers empty groups and the
    # zero/underflow/overflow ranks, and for the others notes which octave holds
    # the rank and the rank within that octave.
    pending = np.empty(out.size, dtype=np.int64)  # flat group * n_qs + k
    pending_octave = np.empty(out.size, dtype=np.int64)
    pending_rank = np.empty(out.size, dtype=np.int64)
    n_pending = 0
    merged = np.zeros(summary.shape[1], dtype=np.int64)
    for group in range(offsets.size - 1):
        merged[:] = 0
        for t in range(offsets[group], offsets[group + 1]):
            row = rows[t]
            for col in range(merged.size):
                merged[col] += summary[row, col]
        total = np.int64(0)
        for col in range(merged.size):
            total += merged[col]
        for k in range(n_qs):
            if total == 0:
                out[group, k] = np.nan
                continue
            rank = np.int64(math.floor((total - 1) * qs[k]))
            seen = merged[ZERO_COL]
            if rank < seen:
                out[group, k] = 0.0
                continue
            seen += merged[UNDERFLOW_COL]
            if rank < seen:
                out[group, k] = min_value
                continue
            out[group, k] = max_value  # the overflow bucket, unless an octave holds the rank
            for octave in range(n_octaves):
                in_octave = merged[OCTAVE_COL + octave]
                if rank < seen + in_octave:
                    pending[n_pending] = group * n_qs + k
                    pending_octave[n_pending] = octave
                    pending_rank[n_pending] = rank - seen
                    n_pending += 1
                    break
                seen += in_octave
    # Pass 2 scans one octave of buckets per pending answer. The rows lie far
    # apart in memory, so the octave of a later answer is prefetched while the
    # current one is scanned. qs ascend, so an answer in the same group and
    # octave as the previous one resumes that scan instead of restarting.
    last_group = -1
    last_octave = -1
    step = 0
    seen = np.int64(0)
    for p in range(n_pending):
        ahead = p + _PREFETCH_DISTANCE
        if ahead < n_pending:
            group = pending[ahead] // n_qs
            base = pending_octave[ahead] * sub_buckets
            for t in range(offsets[group], offsets[group + 1]):
                for col in range(base, base + sub_buckets, _INT64_PER_LINE):
                    prefetch(buckets, rows[t], col)
        group = pending[p] // n_qs
        octave = pending_octave[p]
        first = offsets[group]
        last = offsets[group + 1]
        base = octave * sub_buckets
        rank = pending_rank[p]
        if group != last_group or octave != last_octave:
            step = -1
            seen = np.int64(0)
        if last - first == 1:
            row = buckets[rows[first]]
            while rank >= seen and step < sub_buckets - 1:
                step += 1
                seen += row[base + step]
        else:
            while rank >= seen and step < sub_buckets - 1:
                step += 1
                for t in range(first, last):
                    seen += buckets[rows[t], base + step]
        out[group, pending[p] % n_qs] = bucket_values[base + step]
        last_group = group
        last_octave = octave


# --- validating wrappers ---------------------------------------------------


def sketch_values(name: str, values: Any) -> np.ndarray:
    """Check shape and type of values for a sketch; return them as int64 or float64.

    Negative and NaN values are found by the insert kernels themselves (one
    pass) and reported with :func:`bad_value`.
    """
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    return np.ascontiguousarray(array if array.dtype == np.int64 else float64_array(name, array))


def bad_value(name: str, values: np.ndarray, index: int) -> ValueError:
    """The error for a negative or NaN value at ``index``."""
    return ValueError(
        f"{name}[{index}] = {values[index]}: sketch values must be >= 0 and not NaN "
        "(leave unknown waits out before inserting); nothing was inserted"
    )


def check_quantiles(qs: Sequence[float]) -> np.ndarray:
    """Return ``qs`` as a float64 vector after checking every value is in [0, 1]."""
    array = float64_array("qs", qs).reshape(-1)
    if array.size == 0 or not np.all((array >= 0.0) & (array <= 1.0)):
        raise ValueError(f"qs must be a non-empty list of quantiles in [0, 1], got {array.tolist()}")
    return np.ascontiguousarray(array)


class Sketches:
    """``n`` wait-time sketches stored as ``summary`` and ``buckets`` int64 rows.

    Parameters
    ----------
    summary : numpy.ndarray
        ``(n, spec.summary_width)`` int64, C-contiguous.
    buckets : numpy.ndarray
        ``(n, spec.n_buckets)`` int64, C-contiguous.
    spec : SketchSpec
        Accuracy and range.

    Notes
    -----
    ``insert``, ``reset`` and ``put`` update in place; ``merge``,
    ``merge_rows``, ``take`` and ``copy`` return new objects and never modify
    their inputs.
    """

    __slots__ = ("summary", "buckets", "spec")

    def __init__(self, summary: np.ndarray, buckets: np.ndarray, spec: SketchSpec = DEFAULT_SPEC) -> None:
        if not isinstance(spec, SketchSpec):
            raise TypeError(f"spec must be a SketchSpec, got {type(spec).__name__}")
        if not isinstance(summary, np.ndarray) or summary.ndim != 2:
            raise ValueError(f"summary must be a 2-D numpy array, got shape {np.shape(summary)}")
        n_rows = summary.shape[0]
        self.summary = state_array("summary", summary, (n_rows, spec.summary_width))
        self.buckets = state_array("buckets", buckets, (n_rows, spec.n_buckets))
        self.spec = spec

    @classmethod
    def empty(cls, n_rows: int, spec: SketchSpec = DEFAULT_SPEC) -> "Sketches":
        """Return ``n_rows`` empty sketches."""
        if isinstance(n_rows, bool) or not isinstance(n_rows, (int, np.integer)) or n_rows < 0:
            raise ValueError(f"n_rows must be a non-negative integer, got {n_rows!r}")
        n = int(n_rows)
        return cls(
            np.zeros((n, spec.summary_width), dtype=np.int64), np.zeros((n, spec.n_buckets), dtype=np.int64), spec
        )

    @property
    def n_rows(self) -> int:
        """Number of sketches."""
        return self.summary.shape[0]

    @property
    def counts(self) -> np.ndarray:
        """Values inserted per sketch, edge buckets included."""
        return self.summary.sum(axis=1)

    @property
    def zero_counts(self) -> np.ndarray:
        """Values equal to 0, per sketch (a view)."""
        return self.summary[:, ZERO_COL]

    @property
    def underflow_counts(self) -> np.ndarray:
        """Values in ``(0, spec.min_value)`` per sketch (a view); answered as ``min_value``."""
        return self.summary[:, UNDERFLOW_COL]

    @property
    def overflow_counts(self) -> np.ndarray:
        """Values above ``spec.max_value`` per sketch (a view); answered as ``max_value``."""
        return self.summary[:, OVERFLOW_COL]

    def insert(self, rows: Any, values: Any) -> None:
        """Count ``values[i]`` in sketch ``rows[i]``, in place.

        Raises
        ------
        TypeError
            Non-integer rows or non-numeric values.
        ValueError
            A row out of range, lengths that differ, or a negative/NaN value.
            Nothing is inserted when the call raises.
        """
        values = sketch_values("values", values)
        rows = int64_column("rows", rows, values.size)
        bad = first_outside(rows, 0, self.n_rows)
        if bad >= 0:
            raise ValueError(f"rows[{bad}] = {rows[bad]} is not a sketch row (expected 0 <= row < {self.n_rows})")
        bad = _insert_rows(self.summary, self.buckets, rows, values, self.spec.geometry)
        if bad >= 0:
            raise bad_value("values", values, bad)

    def merge(self, other: "Sketches") -> "Sketches":
        """Row-by-row sum with ``other`` (same spec and row count) as new sketches."""
        if not isinstance(other, Sketches):
            raise TypeError(f"can only merge Sketches, got {type(other).__name__}")
        if other.spec != self.spec or other.n_rows != self.n_rows:
            raise ValueError(
                f"cannot merge {self.n_rows} sketches of {self.spec} with {other.n_rows} of {other.spec}"
            )
        return Sketches(self.summary + other.summary, self.buckets + other.buckets, self.spec)

    def merge_rows(self, offsets: Any, rows: Any) -> "Sketches":
        """Merge CSR groups of rows (group ``g`` is ``rows[offsets[g]:offsets[g + 1]]``) into new sketches."""
        offsets, rows = row_groups(offsets, rows, self.n_rows)
        merged = Sketches.empty(offsets.size - 1, self.spec)
        merge_groups(self.summary, offsets, rows, merged.summary)
        merge_groups(self.buckets, offsets, rows, merged.buckets)
        return merged

    def quantiles(
        self, qs: Sequence[float] = DEFAULT_QUANTILES, offsets: Any = None, rows: Any = None
    ) -> np.ndarray:
        """Quantiles of every sketch, or of CSR groups of sketches merged on the fly.

        Parameters
        ----------
        qs : sequence of float
            Quantiles in [0, 1], answered with the module's rank rule.
        offsets, rows : array of int, optional
            Group ``g`` is ``rows[offsets[g]:offsets[g + 1]]`` (a rolling window
            is the group of its panes). By default every row is its own group.
            Groups are not materialised: only the summary and the buckets of the
            octaves holding the answers are read.

        Returns
        -------
        numpy.ndarray
            ``(n_groups, len(qs))`` float64; NaN for an empty group.
        """
        qs_array = check_quantiles(qs)
        offsets, rows = row_groups(offsets, rows, self.n_rows)
        order = np.argsort(qs_array, kind="stable")  # the kernel wants ascending qs
        out = np.empty((offsets.size - 1, qs_array.size), dtype=np.float64)
        spec = self.spec
        _group_quantiles(
            self.summary, self.buckets, offsets, rows, qs_array[order], spec.bucket_values, spec.geometry, out
        )
        if np.any(order != np.arange(order.size)):
            out[:, order] = out.copy()
        return out

    def reset(self, rows: Any) -> None:
        """Empty the given sketches in place."""
        rows = self._rows_arg(rows)
        self.summary[rows] = 0
        self.buckets[rows] = 0

    def copy(self) -> "Sketches":
        """Deep copy."""
        return Sketches(self.summary.copy(), self.buckets.copy(), self.spec)

    def take(self, rows: Any) -> "Sketches":
        """New sketches holding copies of the given rows, in that order."""
        rows = self._rows_arg(rows)
        return Sketches(self.summary[rows], self.buckets[rows], self.spec)

    def put(self, rows: Any, source: "Sketches") -> None:
        """Overwrite the given rows, in place, with the rows of ``source`` (same spec, one per row)."""
        rows = self._rows_arg(rows)
        if not isinstance(source, Sketches):
            raise TypeError(f"source must be Sketches, got {type(source).__name__}")
        if source.spec != self.spec or source.n_rows != rows.size:
            raise ValueError(
                f"source must hold {rows.size} sketches of {self.spec}; it holds {source.n_rows} of {source.spec}"
            )
        self.summary[rows] = source.summary
        self.buckets[rows] = source.buckets

    def _rows_arg(self, rows: Any) -> np.ndarray:
        rows = int64_column("rows", np.atleast_1d(rows))
        bad = first_outside(rows, 0, self.n_rows)
        if bad >= 0:
            raise ValueError(f"rows[{bad}] = {rows[bad]} is not a sketch row (expected 0 <= row < {self.n_rows})")
        return rows

    def encoded_size_bound(self) -> int:
        """Upper bound of the body bytes :meth:`to_bytes` writes."""
        nonzero = int(np.count_nonzero(self.buckets))
        return _codec.MAX_VARINT_BYTES * (4 * self.n_rows + 2 * nonzero)

    def to_bytes(self) -> bytes:
        """Serialise: versioned header (spec, row count), then varint edge counts and sparse buckets."""
        spec = self.spec
        header = _codec.pack_header(
            _HEADER, _MAGIC, _VERSION, spec.alpha, spec.min_value, spec.max_value, self.n_rows
        )
        buf = np.empty(self.encoded_size_bound(), dtype=np.uint8)
        end = _codec.encode_sketches(buf, self.summary, self.buckets)
        return header + buf[:end].tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Sketches":
        """Inverse of :meth:`to_bytes`.

        Raises
        ------
        ValueError
            Not a callslo sketch block, another format version, or corrupt data.
        """
        (alpha, min_value, max_value, n_rows), start = _codec.unpack_header(
            data, _HEADER, _MAGIC, _VERSION, "sketch block"
        )
        buf = _codec.as_byte_array(data)
        if n_rows * 4 > buf.size - start:  # every row takes at least 4 bytes
            raise ValueError(f"sketch block claims {n_rows} rows but holds {buf.size - start} bytes (corrupt data)")
        sketches = cls.empty(n_rows, SketchSpec(alpha, min_value, max_value))
        end = _codec.decode_sketches(buf, start, sketches.summary, sketches.buckets, sketches.spec.sub_buckets)
        _codec.check_end(end, buf.size, "sketch block")
        return sketches

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sketches):
            return NotImplemented
        return (
            self.spec == other.spec
            and np.array_equal(self.summary, other.summary)
            and np.array_equal(self.buckets, other.buckets)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Sketches(n_rows={self.n_rows}, spec={self.spec})"


class WaitSketch:
    """One wait-time sketch (a single row of :class:`Sketches`).

    ``add`` updates the sketch in place; ``merge`` returns a new sketch and
    leaves both inputs untouched.

    Examples
    --------
    >>> sketch = WaitSketch()
    >>> sketch.add([0, 1200, 1500, 3000])
    >>> sketch.count
    4
    """

    __slots__ = ("_rows",)

    def __init__(self, spec: SketchSpec = DEFAULT_SPEC) -> None:
        self._rows = Sketches.empty(1, spec)

    @classmethod
    def _of(cls, rows: Sketches) -> "WaitSketch":
        sketch = cls.__new__(cls)
        sketch._rows = rows
        return sketch

    @property
    def spec(self) -> SketchSpec:
        """Accuracy and range."""
        return self._rows.spec

    @property
    def count(self) -> int:
        """Number of values inserted, edge buckets included."""
        return int(self._rows.summary[0].sum())

    @property
    def zero_count(self) -> int:
        """Values equal to 0."""
        return int(self._rows.summary[0, ZERO_COL])

    @property
    def underflow_count(self) -> int:
        """Values in ``(0, spec.min_value)``: counted, answered as ``min_value``."""
        return int(self._rows.summary[0, UNDERFLOW_COL])

    @property
    def overflow_count(self) -> int:
        """Values above ``spec.max_value``: counted, answered as ``max_value``."""
        return int(self._rows.summary[0, OVERFLOW_COL])

    def add(self, values: Any) -> None:
        """Insert non-negative values (``inf`` counts as overflow); see :meth:`Sketches.insert`."""
        values = sketch_values("values", np.atleast_1d(values))
        bad = _insert_one(self._rows.summary, self._rows.buckets, values, self.spec.geometry)
        if bad >= 0:
            raise bad_value("values", values, bad)

    def merge(self, other: "WaitSketch") -> "WaitSketch":
        """Return a new sketch holding the values of both; neither input changes."""
        if not isinstance(other, WaitSketch):
            raise TypeError(f"can only merge a WaitSketch, got {type(other).__name__}")
        return WaitSketch._of(self._rows.merge(other._rows))

    def quantiles(self, qs: Sequence[float] = DEFAULT_QUANTILES) -> np.ndarray:
        """Quantiles by the module's rank rule; NaN when the sketch is empty."""
        return self._rows.quantiles(qs)[0]

    def quantile(self, q: float) -> float:
        """One quantile (see :meth:`quantiles`)."""
        return float(self.quantiles([q])[0])

    def to_bytes(self) -> bytes:
        """Serialise (a one-row :class:`Sketches` block)."""
        return self._rows.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> "WaitSketch":
        """Inverse of :meth:`to_bytes`."""
        rows = Sketches.from_bytes(data)
        if rows.n_rows != 1:
            raise ValueError(f"expected one sketch, the block holds {rows.n_rows}")
        return cls._of(rows)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WaitSketch):
            return NotImplemented
        return self._rows == other._rows

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"WaitSketch(count={self.count}, alpha={self.spec.alpha}, overflow={self.overflow_count})"
