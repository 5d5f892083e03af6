"""An exact map from (owner, byte key) to an int64, for kernels that need sets of strings.

Stage 2 checks every event id against the ids of its queue's open intervals and matches every
call outcome with its ``call.queued``. In Python that is a dict lookup of a ``str`` per row;
here the keys stay bytes (spans of a column batch's string column), so one kernel pass over
a batch can do it. The map is open addressing over a table of entry numbers; an entry holds
the key's hash, its owner (a queue index), its value and where its bytes lie in an arena.
Keys are compared byte for byte: a hash only finds candidates, so two ids never collide.

*Stale* entries: every lookup can be given a per-owner threshold below which a value counts
as absent (a call outcome older than the queue's closed horizon, say). Such entries cost
nothing but room; :meth:`SpanMap.reserve` drops them (and deleted ones) when it rebuilds.

Capacity is reserved before a kernel runs (:meth:`SpanMap.reserve`): the kernels never grow
anything. The arrays travel to kernels as one tuple, :attr:`SpanMap.parts`; a kernel turns
it into raw pointers once (:func:`pointers`) and hands those to the per-row helpers, which
would otherwise pay numba's reference counting on all nine arrays at every call
(``kernels._jit.data_pointer``).
"""

from __future__ import annotations

import numpy as np

from ._jit import data_pointer, jit, same_bytes

__all__ = ["SpanMap", "NO_OWNER_THRESHOLD"]

_EMPTY = -1
_DELETED = -2
# parts: (slots, hashes, owners, values, starts, lengths, live, arena, meta)
# meta: [entries used, live entries, arena bytes used, deleted slots]
_USED, _LIVE, _ARENA, _TOMBS = 0, 1, 2, 3
NO_OWNER_THRESHOLD = -(2**62)


def _pow2(n: int) -> int:
    size = 16
    while size < n:
        size *= 2
    return size


class SpanMap:
    """See the module docstring. ``capacity`` is the number of entries to start with."""

    def __init__(self, capacity: int = 1024, arena_bytes: int = 1 << 16) -> None:
        self.parts = _empty(capacity, arena_bytes)

    def __len__(self) -> int:
        return int(self.parts[8][_LIVE])

    def reserve(self, entries: int, key_bytes: int, thresholds: np.ndarray | None = None) -> None:
        """Room for ``entries`` more entries of ``key_bytes`` bytes in all, rebuilding (and
        dropping deleted entries and those below ``thresholds[owner]``) when needed."""
        slots, _, _, _, _, _, _, arena, meta = self.parts
        used, live, arena_used, tombs = (int(v) for v in meta)
        if (used + entries <= self.parts[1].size and 2 * (live + tombs + entries) <= slots.size
                and arena_used + key_bytes <= arena.size):
            return
        self.compact(thresholds, entries, key_bytes)

    def compact(self, thresholds: np.ndarray | None = None, entries: int = 0,
                key_bytes: int = 0) -> None:
        """Rebuild without deleted entries and those below ``thresholds[owner]``, with room
        for ``entries`` more of ``key_bytes`` bytes."""
        if thresholds is None:
            thresholds = np.full(0, NO_OWNER_THRESHOLD, dtype=np.int64)
        kept = _count_kept(self.parts, thresholds)
        capacity = max(2 * (kept[0] + entries), 1024)
        fresh = _empty(capacity, max(2 * (int(kept[1]) + key_bytes), 1 << 16))
        _rebuild(self.parts, thresholds, fresh)
        self.parts = fresh

    # --- one key at a time (recovery, tests) -----------------------------------------------

    def get(self, owner: int, key: bytes, threshold: int = NO_OWNER_THRESHOLD) -> int | None:
        buf = np.frombuffer(key, dtype=np.uint8)
        found = _get(self.parts, owner, buf, 0, buf.size, threshold)
        return None if found == NO_OWNER_THRESHOLD else int(found)

    def put(self, owner: int, key: bytes, value: int) -> None:
        self.reserve(1, len(key))
        buf = np.frombuffer(key, dtype=np.uint8)
        _put(self.parts, owner, buf, 0, buf.size, value, NO_OWNER_THRESHOLD, False)

    def setdefault(self, owner: int, key: bytes, value: int,
                   threshold: int = NO_OWNER_THRESHOLD) -> None:
        """Insert unless a value at or above ``threshold`` is there."""
        self.reserve(1, len(key))
        buf = np.frombuffer(key, dtype=np.uint8)
        _put(self.parts, owner, buf, 0, buf.size, value, threshold, True)

    def pop(self, owner: int, key: bytes, threshold: int = NO_OWNER_THRESHOLD) -> int | None:
        buf = np.frombuffer(key, dtype=np.uint8)
        found = _pop(self.parts, owner, buf, 0, buf.size, threshold)
        return None if found == NO_OWNER_THRESHOLD else int(found)

    def entries(self, owner_selected: np.ndarray, thresholds: np.ndarray | None = None
                ) -> list[tuple[int, bytes, int]]:
        """``(owner, key, value)`` of the live entries whose owner is selected (a bool array
        by owner) and whose value is not below ``thresholds[owner]``, in insertion order."""
        if thresholds is None:
            thresholds = np.full(0, NO_OWNER_THRESHOLD, dtype=np.int64)
        index = _select(self.parts, owner_selected, thresholds)
        _, _, owners, values, starts, lengths, _, arena, _ = self.parts
        raw = arena.tobytes() if index.size else b""
        return [(int(owners[i]), raw[starts[i]:starts[i] + lengths[i]], int(values[i]))
                for i in index.tolist()]


def _empty(capacity: int, arena_bytes: int) -> tuple:
    return (np.full(_pow2(2 * capacity), _EMPTY, dtype=np.int64),
            np.zeros(capacity, dtype=np.uint64), np.zeros(capacity, dtype=np.int64),
            np.zeros(capacity, dtype=np.int64), np.zeros(capacity, dtype=np.int64),
            np.zeros(capacity, dtype=np.int64), np.zeros(capacity, dtype=np.uint8),
            np.zeros(arena_bytes, dtype=np.uint8), np.zeros(4, dtype=np.int64))


# --- kernels (also called from other kernels) ------------------------------------------------


@jit
def pointers(parts):
    """The map's arrays as raw pointers, plus the slot mask: what :func:`find`,
    :func:`insert_at` and :func:`delete_at` take. Valid while ``parts`` is alive and not
    rebuilt (a kernel's own argument, for the length of the call)."""
    slots, hashes, owners, values, starts, lengths, live, arena, meta = parts
    return (data_pointer(slots), data_pointer(hashes), data_pointer(owners),
            data_pointer(values), data_pointer(starts), data_pointer(lengths),
            data_pointer(live), data_pointer(arena), data_pointer(meta), slots.size - 1)


@jit
def key_hash(owner, buf, s, e):
    h = np.uint64(0xCBF29CE484222325) ^ (np.uint64(owner) * np.uint64(0x9E3779B97F4A7C15))
    prime = np.uint64(0x100000001B3)
    for q in range(s, e):
        h = (h ^ np.uint64(buf[q])) * prime
    return h


@jit
def _threshold(thresholds, owner):
    return thresholds[owner] if owner < thresholds.size else NO_OWNER_THRESHOLD


@jit
def find(m, owner, h, buf, s, e):
    """(slot, entry): the key's slot and entry, or (the slot it would take, -1). ``m`` is
    :func:`pointers` of the map; ``buf`` an array or a pointer."""
    slots, hashes, owners, _, starts, lengths, _, arena, _, mask = m
    i = np.int64(h & np.uint64(mask))
    free = -1
    length = e - s
    while True:
        x = slots[i]
        if x == _EMPTY:
            return (free if free >= 0 else i), -1
        if x == _DELETED:
            if free < 0:
                free = i
        elif hashes[x] == h and owners[x] == owner and lengths[x] == length:
            if same_bytes(arena, starts[x], starts[x] + length, buf, s, e):
                return i, x
        i = (i + 1) & mask


@jit
def insert_at(m, slot, owner, h, buf, s, e, value):
    slots, hashes, owners, values, starts, lengths, live, arena, meta, _ = m
    x = meta[_USED]
    meta[_USED] += 1
    meta[_LIVE] += 1
    if slots[slot] == _DELETED:
        meta[_TOMBS] -= 1
    slots[slot] = x
    hashes[x] = h
    owners[x] = owner
    values[x] = value
    start = meta[_ARENA]
    starts[x] = start
    lengths[x] = e - s
    for q in range(e - s):
        arena[start + q] = buf[s + q]
    meta[_ARENA] += e - s
    live[x] = 1


@jit
def delete_at(m, slot, x):
    slots, _, _, _, _, _, live, _, meta, _ = m
    slots[slot] = _DELETED
    live[x] = 0
    meta[_LIVE] -= 1
    meta[_TOMBS] += 1


@jit
def _get(parts, owner, buf, s, e, threshold):
    _, x = find(pointers(parts), owner, key_hash(owner, buf, s, e), buf, s, e)
    if x < 0 or parts[3][x] < threshold:
        return NO_OWNER_THRESHOLD
    return parts[3][x]


@jit
def _put(parts, owner, buf, s, e, value, threshold, keep_current):
    """Set the key's value; with ``keep_current`` only when it is absent or below
    ``threshold`` (setdefault with stale entries counted as absent)."""
    m = pointers(parts)
    h = key_hash(owner, buf, s, e)
    slot, x = find(m, owner, h, buf, s, e)
    if x >= 0:
        if not keep_current or parts[3][x] < threshold:
            parts[3][x] = value
        return
    insert_at(m, slot, owner, h, buf, s, e, value)


@jit
def _pop(parts, owner, buf, s, e, threshold):
    m = pointers(parts)
    slot, x = find(m, owner, key_hash(owner, buf, s, e), buf, s, e)
    if x < 0:
        return NO_OWNER_THRESHOLD
    value = parts[3][x]
    delete_at(m, slot, x)
    return NO_OWNER_THRESHOLD if value < threshold else value


@jit
def _count_kept(parts, thresholds):
    _, _, owners, values, _, lengths, live, _, meta = parts
    n = 0
    size = 0
    for x in range(meta[_USED]):
        if live[x] and values[x] >= _threshold(thresholds, owners[x]):
            n += 1
            size += lengths[x]
    return n, size


@jit
def _rebuild(old, thresholds, new):
    _, hashes, owners, values, starts, lengths, live, arena, meta = old
    m = pointers(new)
    buf = data_pointer(arena)
    for x in range(meta[_USED]):
        if live[x] and values[x] >= _threshold(thresholds, owners[x]):
            s = starts[x]
            slot, _ = find(m, owners[x], hashes[x], buf, s, s + lengths[x])
            insert_at(m, slot, owners[x], hashes[x], buf, s, s + lengths[x], values[x])


@jit
def _select(parts, owner_selected, thresholds):
    _, _, owners, values, _, _, live, _, meta = parts
    out = np.empty(meta[_LIVE], dtype=np.int64)
    n = 0
    for x in range(meta[_USED]):
        owner = owners[x]
        if (live[x] and owner < owner_selected.size and owner_selected[owner]
                and values[x] >= _threshold(thresholds, owner)):
            out[n] = x
            n += 1
    return out[:n]


@jit
def drop_below(parts, thresholds, dropped_by_owner):
    """Delete the live entries below their owner's threshold; count them per owner."""
    _, hashes, owners, values, starts, lengths, live, arena, meta = parts
    m = pointers(parts)
    buf = data_pointer(arena)
    total = 0
    for x in range(meta[_USED]):
        if live[x] and values[x] < _threshold(thresholds, owners[x]):
            s = starts[x]
            slot, found = find(m, owners[x], hashes[x], buf, s, s + lengths[x])
            delete_at(m, slot, found)
            dropped_by_owner[owners[x]] += 1
            total += 1
    return total


@jit
def owner_stats(parts, upto, counts, lowest):
    """Per owner: live entries with a value <= ``upto``, and their smallest value."""
    _, _, owners, values, _, _, live, _, meta = parts
    for x in range(meta[_USED]):
        if live[x] and values[x] <= upto:
            owner = owners[x]
            counts[owner] += 1
            if values[x] < lowest[owner]:
                lowest[owner] = values[x]
