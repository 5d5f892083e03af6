"""Byte spans of a buffer: gathered into one contiguous column, or interned as exact keys.

Stage 1 keeps the strings of a batch as spans of the batch's own bytes until they are
written out, so no Python string is made per event. Two operations serve it:

- :func:`gather_spans` copies spans, in row order, into one new buffer with an offsets
  array (the layout of a string column);
- :func:`intern_keys` numbers the distinct keys of a batch in order of first appearance.
  A key is a flag plus two spans (for example tenant and queue), compared byte for byte: a
  hash only finds candidates, so two different keys never share a number.
"""

from __future__ import annotations

import numpy as np

from ._jit import jit, same_bytes

__all__ = ["gather_spans", "intern_keys"]


def gather_spans(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``(blob, offsets)``: row ``i`` is ``blob[offsets[i]:offsets[i + 1]]``, a copy of
    ``buf[starts[i]:ends[i]]``; a negative start gives an empty row."""
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    ends = np.ascontiguousarray(ends, dtype=np.int64)
    if starts.shape != ends.shape or starts.ndim != 1:
        raise ValueError("starts and ends must be 1-D arrays of the same length")
    present = starts >= 0
    if np.any(present & ((ends < starts) | (ends > buf.size))):
        raise ValueError("a span lies outside buf")
    lengths = np.where(present, ends - starts, 0)
    offsets = np.zeros(starts.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    blob = np.empty(int(offsets[-1]), dtype=np.uint8)
    _gather(buf, starts, offsets, blob)
    return blob, offsets


def intern_keys(flag: np.ndarray, buf: np.ndarray, a_start: np.ndarray, a_end: np.ndarray,
                b_start: np.ndarray, b_end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, first_rows)``: ``ids[i]`` numbers row ``i``'s key ``(flag[i], buf[a_start[i]:
    a_end[i]], buf[b_start[i]:b_end[i]])`` by first appearance; ``first_rows[g]`` is the
    first row with key ``g``. Rows with a negative ``flag`` get id -1 and are left out."""
    n = flag.size
    for name, column in (("a_start", a_start), ("a_end", a_end), ("b_start", b_start),
                         ("b_end", b_end)):
        if column.shape != (n,):
            raise ValueError(f"{name} must have one entry per row")
    flag = np.ascontiguousarray(flag, dtype=np.int64)
    spans = np.stack([np.asarray(c, dtype=np.int64) for c in (a_start, a_end, b_start, b_end)])
    used = flag >= 0
    if np.any(used & ((spans[1] < spans[0]) | (spans[3] < spans[2]) | (spans[0] < 0)
                      | (spans[2] < 0) | (spans[1] > buf.size) | (spans[3] > buf.size))):
        raise ValueError("a key span lies outside buf")
    size = 16
    while size < 2 * n:
        size *= 2
    ids = np.empty(n, dtype=np.int32)
    first_rows = np.empty(n, dtype=np.int64)
    count = _intern(flag, buf, spans, np.full(size, -1, dtype=np.int64), ids, first_rows)
    return ids, first_rows[:count]


# --- kernels ---------------------------------------------------------------


@jit
def _gather(buf, starts, offsets, blob):
    for i in range(starts.size):
        s = starts[i]
        if s < 0:
            continue
        o = offsets[i]
        for q in range(offsets[i + 1] - o):
            blob[o + q] = buf[s + q]


@jit
def _key_hash(flag, buf, a_start, a_end, b_start, b_end):
    h = np.uint64(0xCBF29CE484222325) ^ np.uint64(flag)
    prime = np.uint64(0x100000001B3)
    for q in range(a_start, a_end):
        h = (h ^ np.uint64(buf[q])) * prime
    h = (h ^ np.uint64(0x1FF)) * prime  # separates (a, b) from (a + b[:1], b[1:])
    for q in range(b_start, b_end):
        h = (h ^ np.uint64(buf[q])) * prime
    return h


@jit
def _intern(flag, buf, spans, table, ids, first_rows):
    mask = np.uint64(table.size - 1)
    count = 0
    for i in range(flag.size):
        if flag[i] < 0:
            ids[i] = -1
            continue
        a0, a1, b0, b1 = spans[0, i], spans[1, i], spans[2, i], spans[3, i]
        slot = np.int64(_key_hash(flag[i], buf, a0, a1, b0, b1) & mask)
        while True:
            g = table[slot]
            if g < 0:
                table[slot] = count
                first_rows[count] = i
                ids[i] = count
                count += 1
                break
            r = first_rows[g]
            if (flag[r] == flag[i] and same_bytes(buf, spans[0, r], spans[1, r], buf, a0, a1)
                    and same_bytes(buf, spans[2, r], spans[3, r], buf, b0, b1)):
                ids[i] = g
                break
            slot = (slot + 1) & np.int64(mask)
    return count
