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

from ._jit import jit, same_bytes

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
    used = _scan(buf, starts, ends, name_buf, name_starts, name_ends, printable_table(),
                 kind, start, end, value, printable, items, unsure)
    return ScannedObjects(kind, start, end, value, printable, items[:used], unsure)


# --- kernels ---------------------------------------------------------------


@jit
def _skip_ws(buf, p, e):
    while p < e:
        c = buf[p]
        if c != 32 and c != 9 and c != 10 and c != 13:
            break
        p += 1
    return p


@jit
def _string(buf, p, e, plain, table):
    """``buf[p]`` is an opening quote. Returns (ok, position after the closing quote,
    characters, printable). ``plain`` marks the bytes that need no thought (printable
    ASCII but the quote and the backslash): the inner loop only skips those."""
    p += 1
    first = p
    continuation = 0
    printable = True
    while True:
        while p < e and plain[buf[p]]:
            p += 1
        if p >= e:
            return False, p, 0, printable
        c = buf[p]
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
        second = buf[p + 1]
        if second < low or second > high:
            return False, p, 0, printable
        for q in range(p + 2, p + width):
            if buf[q] < 0x80 or buf[q] > 0xBF:
                return False, p, 0, printable
        if width == 2:
            code = ((c & 0x1F) << 6) | (second & 0x3F)
            if not table[code]:
                printable = False
        elif width == 3:
            code = ((c & 0x0F) << 12) | ((second & 0x3F) << 6) | (buf[p + 2] & 0x3F)
            if not table[code]:
                printable = False
        else:
            printable = False  # beyond the table: the exact decoder decides
        continuation += width - 1
        p += width


@jit
def _integer(buf, p, e):
    """An integer token at ``buf[p]``. Returns (ok, position after it, value)."""
    negative = False
    if buf[p] == 45:  # '-'
        negative = True
        p += 1
    if p >= e or buf[p] < 48 or buf[p] > 57:
        return False, p, 0
    number = 0
    if buf[p] == 48:  # a leading zero stands alone
        p += 1
        if p < e and 48 <= buf[p] <= 57:
            return False, p, 0
    else:
        digits = 0
        while p < e and 48 <= buf[p] <= 57:
            digits += 1
            if digits > _MAX_INT_DIGITS:
                return False, p, 0
            number = number * 10 + (buf[p] - 48)
            p += 1
    if p < e and (buf[p] == 46 or buf[p] == 101 or buf[p] == 69):  # . e E: a float
        return False, p, 0
    return True, p, -number if negative else number


@jit
def _literal(buf, p, e, a, b, c, d, e5):
    """The 4- or 5-letter literal ``a b c d [e5]`` at ``buf[p]`` (``e5 < 0``: 4 letters)."""
    width = 4 if e5 < 0 else 5
    if p + width > e:
        return False
    if buf[p] != a or buf[p + 1] != b or buf[p + 2] != c or buf[p + 3] != d:
        return False
    return width == 4 or buf[p + 4] == e5


@jit
def _slot_of(buf, ks, ke, name_buf, name_starts, name_ends):
    for j in range(name_starts.size):
        if same_bytes(buf, ks, ke, name_buf, name_starts[j], name_ends[j]):
            return j
    return -1


@jit
def _scan_one(buf, s, e, m, name_buf, name_starts, name_ends, plain, table, kind, start, end, value,
              printable, items, used):
    """One message; returns (ok, items used). Slots are written only for an ok message's
    fields, but may be left half-written when it is not (the caller clears them)."""
    p = _skip_ws(buf, s, e)
    if p >= e or buf[p] != 123:  # '{'
        return False, used
    p = _skip_ws(buf, p + 1, e)
    if p < e and buf[p] == 125:  # '}'
        return _skip_ws(buf, p + 1, e) == e, used
    while True:
        if p >= e or buf[p] != _QUOTE:
            return False, used
        ks = p + 1
        ok, p, _, _ = _string(buf, p, e, plain, table)
        if not ok:
            return False, used
        slot = _slot_of(buf, ks, p - 1, name_buf, name_starts, name_ends)
        p = _skip_ws(buf, p, e)
        if p >= e or buf[p] != 58:  # ':'
            return False, used
        p = _skip_ws(buf, p + 1, e)
        if p >= e:
            return False, used
        c = buf[p]
        vkind = ABSENT
        vstart = p
        vend = p
        vvalue = 0
        vprintable = False
        if c == _QUOTE:
            ok, p, chars, vprintable = _string(buf, p, e, plain, table)
            if not ok:
                return False, used
            vkind, vstart, vend, vvalue = STRING, vstart + 1, p - 1, chars
        elif c == 45 or 48 <= c <= 57:
            ok, p, vvalue = _integer(buf, p, e)
            if not ok:
                return False, used
            vkind = INT
        elif c == 110:  # null
            if not _literal(buf, p, e, 110, 117, 108, 108, -1):
                return False, used
            vkind, p = NULL, p + 4
        elif c == 116:  # true
            if not _literal(buf, p, e, 116, 114, 117, 101, -1):
                return False, used
            vkind, p = TRUE, p + 4
        elif c == 102:  # false
            if not _literal(buf, p, e, 102, 97, 108, 115, 101):
                return False, used
            vkind, p = FALSE, p + 5
        elif c == 91:  # '[': strings only
            vkind, vstart = STRINGS, used
            p = _skip_ws(buf, p + 1, e)
            if p < e and buf[p] == 93:
                p += 1
            else:
                while True:
                    if p >= e or buf[p] != _QUOTE or used >= items.shape[0]:
                        return False, used
                    item_start = p + 1
                    ok, p, chars, item_printable = _string(buf, p, e, plain, table)
                    if not ok:
                        return False, used
                    items[used, 0] = item_start
                    items[used, 1] = p - 1
                    items[used, 2] = chars
                    items[used, 3] = 1 if item_printable else 0
                    used += 1
                    p = _skip_ws(buf, p, e)
                    if p < e and buf[p] == 44:  # ','
                        p = _skip_ws(buf, p + 1, e)
                        continue
                    if p < e and buf[p] == 93:  # ']'
                        p += 1
                        break
                    return False, used
            vend = used
        else:
            return False, used  # a nested object, or not JSON
        if slot >= 0:
            if kind[m, slot] != ABSENT:
                return False, used  # the same field twice
            kind[m, slot] = vkind
            start[m, slot] = vstart
            end[m, slot] = vend
            value[m, slot] = vvalue
            printable[m, slot] = vprintable
        p = _skip_ws(buf, p, e)
        if p < e and buf[p] == 44:
            p = _skip_ws(buf, p + 1, e)
            continue
        if p < e and buf[p] == 125:
            return _skip_ws(buf, p + 1, e) == e, used
        return False, used


@jit
def _scan(buf, starts, ends, name_buf, name_starts, name_ends, table, kind, start, end, value,
          printable, items, unsure):
    plain = np.zeros(256, dtype=np.bool_)
    for c in range(0x20, 0x7F):
        plain[c] = c != _QUOTE and c != _BACKSLASH
    used = 0
    for m in range(starts.size):
        if starts[m] < 0:
            unsure[m] = True
            continue
        ok, after = _scan_one(buf, starts[m], ends[m], m, name_buf, name_starts, name_ends,
                              plain, table, kind, start, end, value, printable, items, used)
        if ok:
            used = after
        else:
            unsure[m] = True
            for j in range(kind.shape[1]):
                kind[m, j] = ABSENT
    return used
