"""Byte-level helpers shared by the sketch and pane-state serialisers.

A serialised block is a fixed little-endian header written with :mod:`struct`
(magic, format version, sketch geometry, sizes) followed by a body of LEB128
varints written by the jitted helpers below. Counts are small most of the time,
so varints keep Faust table values and Kafka messages compact.

Body layouts (version 1)
------------------------
sketch row
    zero, underflow and overflow counts; the number of non-empty buckets; then
    per non-empty bucket the gap since the previous one and its count. Octave
    totals are not stored: decoding rebuilds them from the buckets.
pane
    ``n_fields`` record fields as zigzag varints (``MAX_WAIT_MS`` may be -1),
    then the pane's sketch row.
"""

from __future__ import annotations

import struct

import numpy as np

from ._jit import jit
from .mapping import OCTAVE_COL

# Decoder status codes returned by jitted readers (>= 0 means "next offset").
TRUNCATED = -1
OVERLONG = -2
OUT_OF_RANGE = -3

_STATUS_TEXT = {
    TRUNCATED: "the data ends in the middle of a value (truncated message?)",
    OVERLONG: "a varint is longer than 10 bytes (corrupt data)",
    OUT_OF_RANGE: "a decoded index or count is out of range (corrupt data)",
}

MAX_VARINT_BYTES = 10


def status_text(status: int) -> str:
    """Describe a negative decoder status for an error message."""
    return _STATUS_TEXT.get(status, f"unknown decoder status {status}")


def pack_header(fmt: str, magic: bytes, version: int, *fields: object) -> bytes:
    """Pack ``magic``, a one-byte ``version`` and ``fields`` (little-endian)."""
    return magic + struct.pack("<B" + fmt, version, *fields)


def unpack_header(data: bytes, fmt: str, magic: bytes, version: int, what: str) -> tuple[tuple, int]:
    """Check magic and version, unpack the fixed header; return (fields, body offset)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"{what} must be bytes, got {type(data).__name__}")
    data = bytes(data)
    size = len(magic) + struct.calcsize("<B" + fmt)
    if len(data) < size or data[: len(magic)] != magic:
        raise ValueError(f"not a callslo {what}: expected the header {magic!r}")
    found_version, *fields = struct.unpack_from("<B" + fmt, data, len(magic))
    if found_version != version:
        raise ValueError(
            f"{what} has format version {found_version}; this callslo reads version {version} "
            "(upgrade callslo or re-create the state)"
        )
    return tuple(fields), size


def as_byte_array(data: bytes) -> np.ndarray:
    """View ``data`` as a read-only uint8 array without copying."""
    return np.frombuffer(bytes(data), dtype=np.uint8)


@jit
def write_varint(buf, pos, value):
    """Write non-negative ``value`` as LEB128 at ``buf[pos]``; return the next offset."""
    v = np.uint64(value)
    while v >= 0x80:
        buf[pos] = np.uint8((v & np.uint64(0x7F)) | np.uint64(0x80))
        v >>= np.uint64(7)
        pos += 1
    buf[pos] = np.uint8(v)
    return pos + 1


@jit
def read_varint(buf, pos):
    """Read one LEB128 value at ``buf[pos]``; return (value, next offset or status)."""
    result = np.uint64(0)
    shift = np.uint64(0)
    for _ in range(MAX_VARINT_BYTES):
        if pos >= buf.size:
            return np.int64(0), TRUNCATED
        byte = np.uint64(buf[pos])
        pos += 1
        result |= (byte & np.uint64(0x7F)) << shift
        if byte < 0x80:
            return np.int64(result), pos
        shift += np.uint64(7)
    return np.int64(0), OVERLONG


@jit
def zigzag(value):
    """Map a signed int64 to an unsigned one so small magnitudes stay short."""
    return (np.int64(value) << 1) ^ (np.int64(value) >> 63)


@jit
def unzigzag(value):
    """Inverse of :func:`zigzag`."""
    v = np.uint64(value)
    return np.int64(v >> np.uint64(1)) ^ -np.int64(v & np.uint64(1))


def check_end(end: int, size: int, what: str) -> None:
    """Raise ValueError unless a decoder consumed the whole buffer."""
    if end < 0:
        raise ValueError(f"cannot decode {what}: {status_text(end)}")
    if end != size:
        raise ValueError(f"{what} has {size - end} unexpected trailing bytes (corrupt data)")


@jit
def encode_row(buf, pos, summary, buckets, row):
    """Append sketch ``row`` to ``buf``: edge counts, then (gap, count) of non-empty buckets."""
    for col in range(OCTAVE_COL):
        pos = write_varint(buf, pos, summary[row, col])
    nonzero = 0
    for col in range(buckets.shape[1]):
        if buckets[row, col] != 0:
            nonzero += 1
    pos = write_varint(buf, pos, nonzero)
    previous = -1
    for col in range(buckets.shape[1]):
        if buckets[row, col] != 0:
            pos = write_varint(buf, pos, col - previous - 1)
            pos = write_varint(buf, pos, buckets[row, col])
            previous = col
    return pos


@jit
def decode_row(buf, pos, summary, buckets, row, sub_buckets):
    """Read a row written by :func:`encode_row` into zeroed arrays; rebuild octave totals.

    Returns the next offset or a negative ``_codec`` status.
    """
    for col in range(OCTAVE_COL):
        value, pos = read_varint(buf, pos)
        if pos < 0:
            return pos
        if value < 0:
            return OUT_OF_RANGE
        summary[row, col] = value
    nonzero, pos = read_varint(buf, pos)
    if pos < 0:
        return pos
    if nonzero < 0 or nonzero > buckets.shape[1]:
        return OUT_OF_RANGE
    previous = -1
    for _ in range(nonzero):
        gap, pos = read_varint(buf, pos)
        if pos < 0:
            return pos
        count, pos = read_varint(buf, pos)
        if pos < 0:
            return pos
        col = previous + 1 + gap
        if gap < 0 or col >= buckets.shape[1] or count <= 0:
            return OUT_OF_RANGE
        buckets[row, col] = count
        summary[row, OCTAVE_COL + col // sub_buckets] += count
        previous = col
    return pos


@jit
def encode_sketches(buf, summary, buckets):
    """Append every sketch row; return the end offset."""
    pos = 0
    for row in range(summary.shape[0]):
        pos = encode_row(buf, pos, summary, buckets, row)
    return pos


@jit
def decode_sketches(buf, pos, summary, buckets, sub_buckets):
    """Inverse of :func:`encode_sketches` into zeroed arrays; next offset or a negative status."""
    for row in range(summary.shape[0]):
        pos = decode_row(buf, pos, summary, buckets, row, sub_buckets)
        if pos < 0:
            return pos
    return pos


@jit
def pane_rows_size_bound(buckets, n_fields, rows):
    """Upper bound of the bytes :func:`encode_pane_rows` writes for ``rows``."""
    nonzero = 0
    for i in range(rows.shape[0]):
        for col in range(buckets.shape[1]):
            if buckets[rows[i], col] != 0:
                nonzero += 1
    return MAX_VARINT_BYTES * ((n_fields + OCTAVE_COL + 1) * rows.shape[0] + 2 * nonzero)


@jit
def encode_pane_rows(buf, records, n_fields, summary, buckets, rows, ends):
    """:func:`encode_panes` of the panes ``rows`` (in that order) straight from the whole
    state, without copying them out first; ``ends[i]`` is the offset after the i-th."""
    pos = 0
    for i in range(rows.shape[0]):
        pane = rows[i]
        for col in range(n_fields):
            pos = write_varint(buf, pos, zigzag(records[pane, col]))
        pos = encode_row(buf, pos, summary, buckets, pane)
        ends[i] = pos
    return pos


@jit
def encode_panes(buf, records, n_fields, summary, buckets):
    """Append every pane: its ``n_fields`` record fields (zigzag varints), then its sketch row."""
    n = records.shape[0]
    return encode_pane_rows(buf, records, n_fields, summary, buckets,
                            np.arange(n, dtype=np.int64), np.empty(n, dtype=np.int64))


@jit
def decode_panes(buf, pos, records, n_fields, summary, buckets, sub_buckets):
    """Inverse of :func:`encode_panes` into zeroed arrays; next offset or a negative status."""
    for pane in range(records.shape[0]):
        for col in range(n_fields):
            value, pos = read_varint(buf, pos)
            if pos < 0:
                return pos
            records[pane, col] = unzigzag(value)
        pos = decode_row(buf, pos, summary, buckets, pane, sub_buckets)
        if pos < 0:
            return pos
    return pos
