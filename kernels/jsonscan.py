"""Flat JSON objects scanned in one pass: a batch of messages to typed field slots.

Stage 1 receives thousands of small JSON objects per poll. Decoding each one into a Python
dict costs more than everything else stage 1 does with it, so the common shape is scanned
here instead, straight from the bytes of the whole batch: every message is checked to be a
JSON object and the values of a given list of field names land in per-slot columns (kind,
byte span, integer value, character count, printability). No Python object is made per
message.

The scanner is an accelerator, never a judge. It reads a strict subset of JSON and marks
every message outside it *unsure*; the caller hands unsure messages to an exact decoder
(orjson, then the contract's own checks), which also gives the reason when a message is
bad. A message is unsure when it is not an object, is not valid JSON, or uses anything the
subset leaves out:

- a string with a backslash escape, or bytes that are not well-formed UTF-8;
- a number with a fraction or exponent, or with more than 18 digits;
- a nested object anywhere, or an array holding anything but strings;
- a field of the list that appears twice (JSON parsers keep one of them; the exact decoder
  knows which);
- more array items in the batch than the item table holds.

Unknown fields are allowed and skipped; their values must still be in the subset.

A string value's ``value`` is its length in characters (code points) and ``printable`` says
whether every character is printable by Python's ``str.isprintable`` (taken from that
function for the Basic Multilingual Plane; a character beyond it counts as not printable,
so a check that needs printability sends such a value to the exact decoder).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ._jit import data_pointer, jit, same_bytes

__all__ = ["ABSENT", "NULL", "STRING", "INT", "TRUE", "FALSE", "STRINGS", "ScannedObjects",
           "scan_objects", "printable_table"]

# Slot kinds (``ScannedObjects.kind``).
ABSENT = 0
NULL = 1
STRING = 2
INT = 3
TRUE = 4
FALSE = 5
STRINGS = 6
"""An array of strings: ``start``/``end`` index the item table."""

_QUOTE = 34
_BACKSLASH = 92
_MAX_INT_DIGITS = 18


@dataclass(frozen=True, slots=True)
class ScannedObjects:
    """Per message ``m`` and slot ``j``: ``kind[m, j]`` is one of the slot kinds; for
    ``STRING`` the value's bytes are ``buf[start:end]``, ``value`` its length in characters
    and ``printable`` whether every character is printable; for ``INT`` ``value`` is the
    number; for ``STRINGS`` the items are rows ``start..end`` of ``items`` (columns: start,
    end, characters, printable). Slots of unsure messages are ``ABSENT``."""

    kind: np.ndarray
    start: np.ndarray
    end: np.ndarray
    value: np.ndarray
    printable: np.ndarray
    items: np.ndarray
    unsure: np.ndarray


_PRINTABLE: np.ndarray | None = None


def printable_table() -> np.ndarray:
    """``str.isprintable`` of every code point of the Basic Multilingual Plane (computed once)."""
    global _PRINTABLE
    if _PRINTABLE is None:
        _PRINTABLE = np.fromiter((chr(c).isprintable() for c in range(0x10000)),
                                 dtype=np.bool_, count=0x10000)
    return _PRINTABLE


def scan_objects(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                 names: Sequence[bytes]) -> ScannedObjects:
    """Scan messages ``buf[starts[m]:ends[m]]`` for the fields ``names`` (slot ``j`` holds
    ``names[j]``). A negative start marks a missing message (unsure)."""
    if not isinstance(buf, np.ndarray) or buf.dtype != np.uint8 or buf.ndim != 1:
        raise TypeError("buf must be a 1-D uint8 array")
    buf = np.ascontiguousarray(buf)
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    ends = np.ascontiguousarray(ends, dtype=np.int64)
    if starts.shape != ends.shape or starts.ndim != 1:
        raise ValueError("starts and ends must be 1-D arrays of the same length")
    if starts.size and (ends.max() > buf.size or np.any((starts >= 0) & (ends < starts))):
        raise ValueError("a message span lies outside buf")
    if len(set(names)) != len(names) or not all(names):
        raise ValueError("names must be distinct and non-empty")
    name_bytes = b"".join(names)
    name_buf = np.frombuffer(name_bytes, dtype=np.uint8) if name_bytes else np.zeros(0, np.uint8)
    name_ends = np.cumsum([len(n) for n in names], dtype=np.int64)
    name_starts = name_ends - np.asarray([len(n) for n in names], dtype=np.int64)
    n, k = starts.size, len(names)
    kind = np.zeros((n, k), dtype=np.int8)
    start = np.empty((n, k), dtype=np.int64)
    end = np.empty((n, k), dtype=np.int64)
    value = np.empty((n, k), dtype=np.int64)
    printable = np.empty((n, k), dtype=np.bool_)
    # Every item needs at least 3 bytes (`"",`); pages never written are never touched.
    items = np.empty((int(buf.size) // 3 + 16, 4), dtype=np.int64)
    unsure = np.zeros(n, dtype=np.bool_)
    # Bytes for the kernel's pointers: a boolean array's elements are bytes there.
    used = _scan(buf, starts, ends, name_buf, name_starts, name_ends,
                 printable_table().view(np.uint8), kind, start, end, value,
                 printable.view(np.uint8), items, unsure)
    return ScannedObjects(kind, start, end, value, printable, items[:used], unsure)


# --- kernels ---------------------------------------------------------------
# The helpers take raw pointers (``data_pointer``), not arrays: they run per byte and per
# field, where numba's reference counting of array arguments cost more than the scan.
# ``b`` is the message buffer; 2-D outputs are indexed flat (row * columns + column).


@jit
def _skip_ws(b, p, e):
    while p < e:
        c = b[p]
        if c != 32 and c != 9 and c != 10 and c != 13:
            break
        p += 1
    return p


@jit
def _string(b, p, e, plain, table):
    """``b[p]`` is an opening quote. Returns (ok, position after the closing quote,
    characters, printable). ``plain`` marks the bytes that need no thought (printable
    ASCII but the quote and the backslash): the inner loop only skips those."""
    p += 1
    first = p
    continuation = 0
    printable = True
    while True:
        while p < e and plain[b[p]] != 0:
            p += 1
        if p >= e:
            return False, p, 0, printable
        c = b[p]
        if c == _QUOTE:
            return True, p + 1, p - first - continuation, printable
        if c == _BACKSLASH or c < 0x20:
            return False, p, 0, printable
        if c < 0x80:  # DEL
            printable = False
            p += 1
            continue
        if 0xC2 <= c <= 0xDF:
            width, low, high = 2, 0x80, 0xBF
        elif c == 0xE0:
            width, low, high = 3, 0xA0, 0xBF
        elif c == 0xED:  # no UTF-16 surrogates
            width, low, high = 3, 0x80, 0x9F
        elif 0xE1 <= c <= 0xEF:
            width, low, high = 3, 0x80, 0xBF
        elif c == 0xF0:
            width, low, high = 4, 0x90, 0xBF
        elif 0xF1 <= c <= 0xF3:
            width, low, high = 4, 0x80, 0xBF
        elif c == 0xF4:
            width, low, high = 4, 0x80, 0x8F
        else:
            return False, p, 0, printable
        if p + width > e:
            return False, p, 0, printable
        second = b[p + 1]
        if second < low or second > high:
            return False, p, 0, printable
        for q in range(p + 2, p + width):
            if b[q] < 0x80 or b[q] > 0xBF:
                return False, p, 0, printable
        if width == 2:
            code = ((c & 0x1F) << 6) | (second & 0x3F)
            if table[code] == 0:
                printable = False
        elif width == 3:
            code = ((c & 0x0F) << 12) | ((second & 0x3F) << 6) | (b[p + 2] & 0x3F)
            if table[code] == 0:
                printable = False
        else:
            printable = False  # beyond the table: the exact decoder decides
        continuation += width - 1
        p += width


@jit
def _integer(b, p, e):
    """An integer token at ``b[p]``. Returns (ok, position after it, value)."""
    negative = False
    if b[p] == 45:  # '-'
        negative = True
        p += 1
    if p >= e or b[p] < 48 or b[p] > 57:
        return False, p, 0
    number = 0
    if b[p] == 48:  # a leading zero stands alone
        p += 1
        if p < e and 48 <= b[p] <= 57:
            return False, p, 0
    else:
        digits = 0
        while p < e and 48 <= b[p] <= 57:
            digits += 1
            if digits > _MAX_INT_DIGITS:
                return False, p, 0
            number = number * 10 + (b[p] - 48)
            p += 1
    if p < e and (b[p] == 46 or b[p] == 101 or b[p] == 69):  # . e E: a float
        return False, p, 0
    return True, p, -number if negative else number


@jit
def _literal(b, p, e, a, b2, c, d, e5):
    """The 4- or 5-letter literal ``a b2 c d [e5]`` at ``b[p]`` (``e5 < 0``: 4 letters)."""
    width = 4 if e5 < 0 else 5
    if p + width > e:
        return False
    if b[p] != a or b[p + 1] != b2 or b[p + 2] != c or b[p + 3] != d:
        return False
    return width == 4 or b[p + 4] == e5


@jit
def _slot_of(b, ks, ke, names, name_starts, name_ends, k):
    for j in range(k):
        if same_bytes(b, ks, ke, names, name_starts[j], name_ends[j]):
            return j
    return -1


@jit
def _scan_one(b, s, e, row, names, name_starts, name_ends, k, plain, table, kind, start, end,
              value, printable, items, capacity, used):
    """One message, whose slots start at flat index ``row``; returns (ok, items used). Slots
    are written only for an ok message's fields, but may be left half-written when it is
    not (the caller clears them)."""
    p = _skip_ws(b, s, e)
    if p >= e or b[p] != 123:  # '{'
        return False, used
    p = _skip_ws(b, p + 1, e)
    if p < e and b[p] == 125:  # '}'
        return _skip_ws(b, p + 1, e) == e, used
    while True:
        if p >= e or b[p] != _QUOTE:
            return False, used
        ks = p + 1
        ok, p, _, _ = _string(b, p, e, plain, table)
        if not ok:
            return False, used
        slot = _slot_of(b, ks, p - 1, names, name_starts, name_ends, k)
        p = _skip_ws(b, p, e)
        if p >= e or b[p] != 58:  # ':'
            return False, used
        p = _skip_ws(b, p + 1, e)
        if p >= e:
            return False, used
        c = b[p]
        vkind = ABSENT
        vstart = p
        vend = p
        vvalue = 0
        vprintable = False
        if c == _QUOTE:
            ok, p, chars, vprintable = _string(b, p, e, plain, table)
            if not ok:
                return False, used
            vkind, vstart, vend, vvalue = STRING, vstart + 1, p - 1, chars
        elif c == 45 or 48 <= c <= 57:
            ok, p, vvalue = _integer(b, p, e)
            if not ok:
                return False, used
            vkind = INT
        elif c == 110:  # null
            if not _literal(b, p, e, 110, 117, 108, 108, -1):
                return False, used
            vkind, p = NULL, p + 4
        elif c == 116:  # true
            if not _literal(b, p, e, 116, 114, 117, 101, -1):
                return False, used
            vkind, p = TRUE, p + 4
        elif c == 102:  # false
            if not _literal(b, p, e, 102, 97, 108, 115, 101):
                return False, used
            vkind, p = FALSE, p + 5
        elif c == 91:  # '[': strings only
            vkind, vstart = STRINGS, used
            p = _skip_ws(b, p + 1, e)
            if p < e and b[p] == 93:
                p += 1
            else:
                while True:
                    if p >= e or b[p] != _QUOTE or used >= capacity:
                        return False, used
                    item_start = p + 1
                    ok, p, chars, item_printable = _string(b, p, e, plain, table)
                    if not ok:
                        return False, used
                    items[4 * used] = item_start
                    items[4 * used + 1] = p - 1
                    items[4 * used + 2] = chars
                    items[4 * used + 3] = 1 if item_printable else 0
                    used += 1
                    p = _skip_ws(b, p, e)
                    if p < e and b[p] == 44:  # ','
                        p = _skip_ws(b, p + 1, e)
                        continue
                    if p < e and b[p] == 93:  # ']'
                        p += 1
                        break
                    return False, used
            vend = used
        else:
            return False, used  # a nested object, or not JSON
        if slot >= 0:
            at = row + slot
            if kind[at] != ABSENT:
                return False, used  # the same field twice
            kind[at] = vkind
            start[at] = vstart
            end[at] = vend
            value[at] = vvalue
            printable[at] = 1 if vprintable else 0
        p = _skip_ws(b, p, e)
        if p < e and b[p] == 44:
            p = _skip_ws(b, p + 1, e)
            continue
        if p < e and b[p] == 125:
            return _skip_ws(b, p + 1, e) == e, used
        return False, used


@jit
def _scan(buf, starts, ends, name_buf, name_starts, name_ends, table, kind, start, end, value,
          printable, items, unsure):
    plain_bytes = np.zeros(256, dtype=np.uint8)
    for c in range(0x20, 0x7F):
        plain_bytes[c] = c != _QUOTE and c != _BACKSLASH
    k = kind.shape[1]
    b, plain, table_p = data_pointer(buf), data_pointer(plain_bytes), data_pointer(table)
    names, nstarts, nends = (data_pointer(name_buf), data_pointer(name_starts),
                             data_pointer(name_ends))
    kind_p, start_p, end_p = data_pointer(kind), data_pointer(start), data_pointer(end)
    value_p, printable_p = data_pointer(value), data_pointer(printable)
    items_p = data_pointer(items)
    used = 0
    for m in range(starts.size):
        if starts[m] < 0:
            unsure[m] = True
            continue
        ok, after = _scan_one(b, starts[m], ends[m], m * k, names, nstarts, nends, k, plain,
                              table_p, kind_p, start_p, end_p, value_p, printable_p, items_p,
                              items.shape[0], used)
        if ok:
            used = after
        else:
            unsure[m] = True
            for j in range(k):
                kind[m, j] = ABSENT
    return used
