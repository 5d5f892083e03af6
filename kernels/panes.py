"""Pane state: per-pane counters, sums, max wait and answered-wait sketch, as arrays.

A pane is one (queue, time slot) aggregate. The engine keeps many panes as the
rows of a :class:`PaneState` (e.g. a ring of 1-minute panes and one of 900 s
interval panes per queue), updates them with :func:`kernels.aggregate.aggregate`,
merges groups of them into rolling windows with :func:`merge_panes`, asks
quantiles of many panes at once with :func:`pane_quantiles` and stores them in
Faust tables with :meth:`PaneState.to_bytes`.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Sequence

import numpy as np

from . import _codec
from ._jit import jit
from ._validate import first_outside, int64_column, row_groups, state_array
from .mapping import DEFAULT_SPEC, SketchSpec
from .sketch import DEFAULT_QUANTILES, Sketches, merge_groups

__all__ = ["Field", "NO_WAIT", "PaneState", "RECORD_WIDTH", "merge_panes", "pane_quantiles"]


class Field(IntEnum):
    """Columns of :attr:`PaneState.records`: one int64 row per pane.

    Counters count events; ``ANSWERED_WAIT_MS``, ``ABANDONED_WAIT_MS`` and ``HANDLE_MS`` are sums in
    milliseconds; ``MAX_WAIT_MS`` is a maximum (:data:`NO_WAIT` until a known
    wait arrives). Merging panes adds every field except ``MAX_WAIT_MS``, which
    takes the maximum.

    The order is a memory layout: a row is 128 bytes on a 64-byte boundary, and
    everything a queued, answered or dequeued call updates sits in its first
    cache line, so such an event costs one line of pane state (an abandon with a
    known wait also adds to ``ABANDONED_WAIT_MS`` in the second).
    """

    ENTERED = 0
    ANSWERED = 1
    ANSWERED_WITHIN = 2
    ANSWERED_WAIT_MS = 3
    MAX_WAIT_MS = 4
    ABANDONED = 5
    ABANDONED_WITHIN = 6
    DEQUEUED = 7
    SHORT_ABANDONED = 8
    HANDLED = 9
    HANDLE_MS = 10
    TRANSFERRED = 11
    WAIT_UNKNOWN = 12
    HANDLE_UNKNOWN = 13
    # Added later, so in the second line: blocks written before them decode with zeros here.
    ABANDONED_WAIT_MS = 14
    DISPOSITIONED = 15


NO_WAIT = -1
"""``MAX_WAIT_MS`` of a pane that has seen no known wait."""

RECORD_WIDTH = 16
"""Columns of a record row: the fields, padded to two 64-byte cache lines."""

INT64_PER_LINE = 8
"""int64 columns per 64-byte cache line."""

_N_FIELDS = len(Field)
_STATE_MAGIC = b"CSPS"
_STATE_VERSION = 1
_STATE_HEADER = "dddQB"  # sketch alpha, min_value, max_value; n_panes, n_fields


class PaneState:
    """Counters, sums, max wait and answered-wait sketch of ``n_panes`` panes.

    Parameters
    ----------
    records : numpy.ndarray
        ``(n_panes, RECORD_WIDTH)`` int64; columns named by :class:`Field`
        (use :meth:`empty`, which also aligns rows to cache lines).
    sketches : Sketches
        One answered-wait sketch (milliseconds) per pane.
    """

    __slots__ = ("records", "sketches")

    def __init__(self, records: np.ndarray, sketches: Sketches) -> None:
        if not isinstance(sketches, Sketches):
            raise TypeError(f"sketches must be Sketches, got {type(sketches).__name__}")
        self.records = state_array("records", records, (sketches.n_rows, RECORD_WIDTH))
        self.sketches = sketches

    @classmethod
    def empty(cls, n_panes: int, spec: SketchSpec = DEFAULT_SPEC) -> "PaneState":
        """Return ``n_panes`` empty panes."""
        sketches = Sketches.empty(n_panes, spec)
        records = _zeros_aligned(sketches.n_rows, RECORD_WIDTH)
        records[:, Field.MAX_WAIT_MS] = NO_WAIT
        return cls(records, sketches)

    @property
    def n_panes(self) -> int:
        """Number of panes (rows)."""
        return self.sketches.n_rows

    @property
    def spec(self) -> SketchSpec:
        """Geometry of the sketches."""
        return self.sketches.spec

    def field(self, name: Field) -> np.ndarray:
        """One field of every pane (a writeable view)."""
        return self.records[:, Field(name)]

    @property
    def max_wait_ms(self) -> np.ndarray:
        """Maximum known wait of every pane, :data:`NO_WAIT` if none (a view)."""
        return self.records[:, Field.MAX_WAIT_MS]

    @property
    def offered(self) -> np.ndarray:
        """``answered + abandoned + dequeued`` per pane (short abandons excluded)."""
        r = self.records
        return r[:, Field.ANSWERED] + r[:, Field.ABANDONED] + r[:, Field.DEQUEUED]

    def reset(self, panes: Any) -> None:
        """Empty the given panes in place (to reuse ring slots for new time panes)."""
        self.sketches.reset(panes)  # validates the indices
        panes = np.atleast_1d(np.asarray(panes, dtype=np.int64))
        self.records[panes] = 0
        self.records[panes, Field.MAX_WAIT_MS] = NO_WAIT

    def copy(self) -> "PaneState":
        """Deep copy."""
        return PaneState(self.records.copy(), self.sketches.copy())

    def take(self, panes: Any) -> "PaneState":
        """New state holding copies of the given panes, in that order (e.g. to serialise a subset)."""
        sketches = self.sketches.take(panes)  # validates the indices
        records = _zeros_aligned(sketches.n_rows, RECORD_WIDTH)
        records[:] = self.records[np.atleast_1d(np.asarray(panes, dtype=np.int64))]
        return PaneState(records, sketches)

    def put(self, panes: Any, source: "PaneState") -> None:
        """Overwrite the given panes, in place, with the panes of ``source`` (one per pane, same spec)."""
        if not isinstance(source, PaneState):
            raise TypeError(f"source must be a PaneState, got {type(source).__name__}")
        self.sketches.put(panes, source.sketches)  # validates indices, spec and count
        self.records[np.atleast_1d(np.asarray(panes, dtype=np.int64))] = source.records

    def resized(self, n_panes: int) -> "PaneState":
        """Copy with ``n_panes`` panes: existing panes keep their rows, new ones are empty."""
        grown = PaneState.empty(n_panes, self.spec)
        kept = min(n_panes, self.n_panes)
        grown.records[:kept] = self.records[:kept]
        grown.sketches.summary[:kept] = self.sketches.summary[:kept]
        grown.sketches.buckets[:kept] = self.sketches.buckets[:kept]
        return grown

    def to_bytes(self) -> bytes:
        """Serialise all panes: versioned header, then varint records and sparse sketches."""
        fixed = _codec.MAX_VARINT_BYTES * self.n_panes * len(Field)
        buf = np.empty(fixed + self.sketches.encoded_size_bound(), dtype=np.uint8)
        end = _codec.encode_panes(buf, self.records, _N_FIELDS, self.sketches.summary, self.sketches.buckets)
        return self.bytes_header(self.n_panes) + buf[:end].tobytes()

    def bytes_header(self, n_panes: int) -> bytes:
        """The header :meth:`to_bytes` writes for a block of ``n_panes`` of these panes."""
        spec = self.spec
        return _codec.pack_header(_STATE_HEADER, _STATE_MAGIC, _STATE_VERSION, spec.alpha,
                                  spec.min_value, spec.max_value, n_panes, len(Field))

    def encode_rows(self, panes: Any) -> list[bytes]:
        """Each given pane's part of a :meth:`to_bytes` body, separately: ``bytes_header(k)``
        followed by k of them, in any order, is the block of those k panes. Faster than
        ``take(panes).to_bytes()`` (no copy of the dense sketches) and lets a caller keep
        the parts of panes that did not change."""
        rows = np.atleast_1d(panes)
        if rows.size == 0:
            return []
        rows = int64_column("panes", rows)
        bad = first_outside(rows, 0, self.n_panes)
        if bad >= 0:
            raise ValueError(f"panes[{bad}] = {rows[bad]} is not a pane (expected 0 <= pane < "
                             f"{self.n_panes})")
        summary, buckets = self.sketches.summary, self.sketches.buckets
        buf = np.empty(_codec.pane_rows_size_bound(buckets, _N_FIELDS, rows), dtype=np.uint8)
        ends = np.empty(rows.size, dtype=np.int64)
        end = _codec.encode_pane_rows(buf, self.records, _N_FIELDS, summary, buckets, rows, ends)
        body = buf[:end].tobytes()
        starts = [0, *ends[:-1].tolist()]
        return [body[a:b] for a, b in zip(starts, ends.tolist())]

    @classmethod
    def from_bytes(cls, data: bytes) -> "PaneState":
        """Inverse of :meth:`to_bytes`.

        Raises
        ------
        ValueError
            Not a callslo pane-state block, another format version, a block
            written with other counter columns, or corrupt data.
        """
        fields, start = _codec.unpack_header(data, _STATE_HEADER, _STATE_MAGIC, _STATE_VERSION, "pane-state block")
        alpha, min_value, max_value, n_panes, n_fields = fields
        if not 1 <= n_fields <= len(Field):
            raise ValueError(
                f"pane-state block has {n_fields} fields per pane; this callslo knows {len(Field)} "
                "(written by a newer callslo version?)"
            )
        buf = _codec.as_byte_array(data)
        if n_panes * (n_fields + 4) > buf.size - start:  # every pane takes at least that many bytes
            raise ValueError(f"pane-state block claims {n_panes} panes but holds {buf.size - start} bytes")
        state = cls.empty(n_panes, SketchSpec(alpha, min_value, max_value))
        sketches = state.sketches
        end = _codec.decode_panes(
            buf, start, state.records, n_fields, sketches.summary, sketches.buckets, state.spec.sub_buckets
        )
        _codec.check_end(end, buf.size, "pane-state block")
        return state

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PaneState):
            return NotImplemented
        return self.sketches == other.sketches and np.array_equal(self.records, other.records)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PaneState(n_panes={self.n_panes}, spec={self.spec})"


def _zeros_aligned(n_rows: int, width: int) -> np.ndarray:
    """Zeroed ``(n_rows, width)`` int64 array whose rows start on 64-byte boundaries."""
    raw = np.zeros(n_rows * width + INT64_PER_LINE, dtype=np.int64)
    skip = (-raw.ctypes.data % 64) // raw.itemsize
    return raw[skip : skip + n_rows * width].reshape(n_rows, width)


@jit
def _merge_records(records, offsets, rows, out):
    for group in range(offsets.size - 1):
        for t in range(offsets[group], offsets[group + 1]):
            row = rows[t]
            for col in range(RECORD_WIDTH):
                if col != Field.MAX_WAIT_MS:
                    out[group, col] += records[row, col]
            if records[row, Field.MAX_WAIT_MS] > out[group, Field.MAX_WAIT_MS]:
                out[group, Field.MAX_WAIT_MS] = records[row, Field.MAX_WAIT_MS]


# --- validating wrappers ---------------------------------------------------


def merge_panes(state: PaneState, offsets: Any, rows: Any) -> PaneState:
    """Merge groups of panes into a new :class:`PaneState`; ``state`` is not modified.

    Group ``g`` is ``rows[offsets[g]:offsets[g + 1]]`` (CSR), e.g. the 1-minute
    panes of a rolling window. Every field and the sketches add, except
    ``MAX_WAIT_MS``, which takes the maximum. An empty group gives an empty pane.
    """
    if not isinstance(state, PaneState):
        raise TypeError(f"state must be a PaneState, got {type(state).__name__}")
    offsets, rows = row_groups(offsets, rows, state.n_panes)
    merged = PaneState.empty(offsets.size - 1, state.spec)
    _merge_records(state.records, offsets, rows, merged.records)
    merge_groups(state.sketches.summary, offsets, rows, merged.sketches.summary)
    merge_groups(state.sketches.buckets, offsets, rows, merged.sketches.buckets)
    return merged


def pane_quantiles(
    state: PaneState,
    qs: Sequence[float] = DEFAULT_QUANTILES,
    offsets: Any = None,
    rows: Any = None,
) -> np.ndarray:
    """Answered-wait quantiles (ms) of every pane, or of CSR groups of panes.

    Returns ``(n_groups, len(qs))`` float64, NaN where a group has no known
    answered wait. Groups are merged on the fly, without copying sketches; see
    :meth:`kernels.sketch.Sketches.quantiles` for the rank rule and edge buckets.
    """
    if not isinstance(state, PaneState):
        raise TypeError(f"state must be a PaneState, got {type(state).__name__}")
    return state.sketches.quantiles(qs, offsets, rows)

