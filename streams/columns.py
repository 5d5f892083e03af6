"""Column batches: the compact form stage 1 gives a batch of valid events for stage 2.

One column batch holds the valid events of one poll of one source partition, as numpy arrays
(numbers) and string columns, plus where they came from (topic, partition, first and last
offset), so stage 2 can tell a redelivered batch from a new one.

A batch without rows is a *heartbeat*: stage 1 found the source partition caught up at wall
time ``clock_ms``, with no new event since ``quiet_since_ms``. It is how stage 2 learns that a
partition is idle rather than stalled, in the partition's own order.

A string column (:class:`StringColumn`) is the UTF-8 bytes of its rows back to back, an
offsets array and a validity mask (``None`` rows are invalid and empty), so a batch is built,
sent and read without a Python string per event; :attr:`ColumnBatch.strings` turns a column
into a list on first use.

Wire format (header version 2)::

    b"CSB1" | u32 little-endian header length | header (JSON) | array bytes

The magic names the message kind (a column batch); the header's ``v`` its layout. The header
names each array with its dtype and byte range; arrays are little-endian and follow the header
back to back. Integer columns use -1 for "absent". A string column ``name`` is the arrays
``name.blob`` (u1), ``name.offsets`` (i4, one more than the rows) and ``name.valid`` (u1); the
``queues`` lists of ``agent.state`` rows are one string column of all items plus
``queue_counts`` (i4 per row, -1 for no list). Version 1 (string lists inside the header) is
still read.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
import orjson

from streams.contract import AGENT_STATES, DEQUEUE_REASONS, EVENT_TYPES, TRANSFER_KINDS, TYPE_FIELDS
from kernels.spans import gather_spans
from streams.errors import BatchFormatError

__all__ = ["ColumnBatch", "StringColumn", "KIND_CODES", "CODE_TABLES", "build_batch", "merge_batches"]

MAGIC = b"CSB1"
_HEADER_LEN = struct.Struct("<I")

#: Event type -> kind code in the ``kind`` column (call kinds match kernels.aggregate.EventKind).
KIND_CODES = {name: code for code, name in enumerate(EVENT_TYPES)}

#: Per event type, the field whose value goes to the ``code`` column, and its table.
CODE_TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "call.dequeued": ("reason", tuple(sorted(DEQUEUE_REASONS))),
    "call.transferred": ("kind", tuple(sorted(TRANSFER_KINDS))),
    "agent.state": ("state", tuple(sorted(AGENT_STATES))),
}
_CODE_INDEX = {etype: (fname, {v: i for i, v in enumerate(table)})
               for etype, (fname, table) in CODE_TABLES.items()}

_INT_COLUMNS = ("offset", "ts_ms", "wait_ms", "talk_ms", "hold_ms", "acw_ms")
_DTYPES = {
    "offset": "<i8", "ts_ms": "<i8", "wait_ms": "<i8", "talk_ms": "<i8", "hold_ms": "<i8",
    "acw_ms": "<i8", "kind": "<i1", "code": "<i1", "group": "<i4",
}
_STRING_COLUMNS = ("event_id", "call_id", "agent_id", "caller", "disposition")


class StringColumn:
    """Optional strings as UTF-8 bytes back to back: row ``i`` is
    ``blob[offsets[i]:offsets[i + 1]]`` where ``valid[i]``, else ``None``."""

    __slots__ = ("blob", "offsets", "valid")

    def __init__(self, blob: bytes, offsets: np.ndarray, valid: np.ndarray) -> None:
        self.blob = blob
        self.offsets = offsets
        self.valid = valid

    @classmethod
    def from_list(cls, values: list[str | None]) -> "StringColumn":
        encoded = [b"" if v is None else v.encode() for v in values]
        offsets = np.zeros(len(values) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)),
                  out=offsets[1:])
        valid = np.fromiter((v is not None for v in values), dtype=np.bool_, count=len(values))
        return cls(b"".join(encoded), offsets, valid)

    @classmethod
    def from_spans(cls, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> "StringColumn":
        """Rows copied from ``buf[starts[i]:ends[i]]``; a negative start is ``None``."""
        blob, offsets = gather_spans(buf, starts, ends)
        return cls(blob.tobytes(), offsets, starts >= 0)

    def __len__(self) -> int:
        return self.valid.size

    def to_list(self) -> list[str | None]:
        o = self.offsets.tolist()
        valid = self.valid.tolist()
        blob = self.blob
        if blob.isascii():  # character offsets are byte offsets: one decode for the column
            text = blob.decode("ascii")
            return [text[o[i]:o[i + 1]] if valid[i] else None for i in range(len(valid))]
        return [blob[o[i]:o[i + 1]].decode() if valid[i] else None for i in range(len(valid))]

    def values_at(self, rows: np.ndarray) -> list[str | None]:
        """The strings of ``rows`` only (a few rows of a large column)."""
        o = self.offsets
        blob = self.blob
        return [blob[o[r]:o[r + 1]].decode() if self.valid[r] else None for r in rows.tolist()]

    def take(self, rows: np.ndarray) -> "StringColumn":
        """The rows ``rows``, in that order."""
        buf = np.frombuffer(self.blob, dtype=np.uint8)
        starts = np.where(self.valid[rows], self.offsets[rows], -1)
        return StringColumn.from_spans(buf, starts, self.offsets[rows + 1])

    @staticmethod
    def concat(first: "StringColumn", second: "StringColumn") -> "StringColumn":
        offsets = np.concatenate([first.offsets[:-1], second.offsets + len(first.blob)])
        return StringColumn(first.blob + second.blob, offsets,
                            np.concatenate([first.valid, second.valid]))


class _LazyStrings(Mapping[str, list]):
    """The string columns of a batch as lists, each made on first use."""

    def __init__(self, columns: dict[str, StringColumn]) -> None:
        self._columns = columns
        self._lists: dict[str, list[str | None]] = {}

    def __getitem__(self, name: str) -> list[str | None]:
        values = self._lists.get(name)
        if values is None:
            values = self._lists[name] = self._columns[name].to_list()
        return values

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)


@dataclass(eq=False)
class ColumnBatch:
    """Valid events of one source partition, one row per event in arrival order.

    ``groups`` lists the distinct keys ``<tenant>/<queue>`` (call events) and
    ``<tenant>/agent/<agent_id>`` (agent events); ``group`` indexes it per row. String columns
    (``texts``) hold ``None`` where the event has no such field. ``queue_items`` holds the
    ``queues`` lists of ``agent.state`` rows back to back, ``queue_counts`` their lengths
    (-1: no list, which is also every other row).
    """

    source_topic: str
    source_partition: int
    first_offset: int
    last_offset: int
    groups: list[str]
    arrays: dict[str, np.ndarray]
    texts: dict[str, StringColumn]
    queue_items: StringColumn
    queue_counts: np.ndarray
    clock_ms: int = -1
    quiet_since_ms: int = -1
    _strings: _LazyStrings | None = field(default=None, repr=False)
    _agent_queues: list[list[str] | None] | None = field(default=None, repr=False)

    @classmethod
    def heartbeat(cls, source_topic: str, source_partition: int, clock_ms: int,
                  quiet_since_ms: int) -> "ColumnBatch":
        """An empty batch saying: caught up at ``clock_ms``, nothing new since ``quiet_since_ms``."""
        batch = build_batch(source_topic, source_partition, [], -1, -1)
        batch.clock_ms = clock_ms
        batch.quiet_since_ms = quiet_since_ms
        return batch

    @property
    def rows(self) -> int:
        return len(self.arrays["kind"])

    @property
    def strings(self) -> Mapping[str, list[str | None]]:
        """The string columns as lists (made on first use of each)."""
        if self._strings is None:
            self._strings = _LazyStrings(self.texts)
        return self._strings

    @property
    def agent_queues(self) -> list[list[str] | None]:
        """Per row, the ``queues`` list of an ``agent.state`` event, else ``None`` (made on
        first use)."""
        if self._agent_queues is not None:
            return self._agent_queues
        items = self.queue_items.to_list()
        out: list[list[str] | None] = []
        position = 0
        for count in self.queue_counts.tolist():
            if count < 0:
                out.append(None)
            else:
                out.append(items[position:position + count])  # type: ignore[arg-type]
                position += count
        self._agent_queues = out
        return out

    def to_bytes(self) -> bytes:
        """Serialise (header version 2)."""
        layout = []
        chunks: list[bytes] = []
        position = 0

        def put(name: str, dtype: str, data: bytes) -> None:
            nonlocal position
            layout.append((name, dtype, position, len(data)))
            chunks.append(data)
            position += len(data)

        for name, dtype in _DTYPES.items():
            put(name, dtype, np.ascontiguousarray(self.arrays[name], dtype=dtype).tobytes())
        for name, column in (*self.texts.items(), ("queues", self.queue_items)):
            put(f"{name}.blob", "u1", column.blob)
            put(f"{name}.offsets", "<i4", column.offsets.astype("<i4").tobytes())
            put(f"{name}.valid", "u1", column.valid.astype(np.uint8).tobytes())
        put("queue_counts", "<i4", self.queue_counts.astype("<i4").tobytes())
        header = orjson.dumps({
            "v": 2,
            "source_topic": self.source_topic,
            "source_partition": self.source_partition,
            "first_offset": self.first_offset,
            "last_offset": self.last_offset,
            "rows": self.rows,
            "groups": self.groups,
            "clock_ms": self.clock_ms,
            "quiet_since_ms": self.quiet_since_ms,
            "layout": layout,
        })
        return b"".join([MAGIC, _HEADER_LEN.pack(len(header)), header, *chunks])

    @classmethod
    def from_bytes(cls, data: bytes) -> "ColumnBatch":
        """Parse bytes made by :meth:`to_bytes`; raises :class:`BatchFormatError` otherwise."""
        if data[:4] != MAGIC or len(data) < 8:
            raise BatchFormatError(f"not a column batch (starts with {data[:4]!r}, expected {MAGIC!r})")
        (header_len,) = _HEADER_LEN.unpack_from(data, 4)
        try:
            header = orjson.loads(data[8:8 + header_len])
            body = memoryview(data)[8 + header_len:]
            parts: dict[str, Any] = {}
            for name, dtype, start, length in header["layout"]:
                if start + length > len(body):
                    raise BatchFormatError(f"column {name} runs past the end of the batch")
                if dtype == "u1" and name.endswith(".blob"):
                    parts[name] = bytes(body[start:start + length])
                else:
                    parts[name] = np.frombuffer(body[start:start + length], dtype=dtype)
            rows = header["rows"]
            arrays = {name: parts[name] for name in _DTYPES}
            if header.get("v", 1) == 1:
                texts = {name: StringColumn.from_list(values)
                         for name, values in header["strings"].items()}
                queue_items, queue_counts = _queue_columns(header["agent_queues"])
            else:
                texts = {name: _string_column(parts, name, rows) for name in _STRING_COLUMNS}
                queue_counts = parts["queue_counts"].astype(np.int64)
                queue_items = _string_column(parts, "queues",
                                             int(np.maximum(queue_counts, 0).sum()))
                if queue_counts.size != rows:
                    raise BatchFormatError("column batch queue counts disagree with its rows")
            batch = cls(header["source_topic"], header["source_partition"], header["first_offset"],
                        header["last_offset"], header["groups"], arrays, texts, queue_items,
                        queue_counts, header.get("clock_ms", -1), header.get("quiet_since_ms", -1))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise BatchFormatError(f"column batch is damaged: {exc}") from exc
        if any(len(a) != rows for a in arrays.values()) or any(
                len(c) != rows for c in texts.values()):
            raise BatchFormatError("column batch arrays disagree on the number of rows")
        groups = arrays["group"]
        if rows and (groups.min() < 0 or groups.max() >= len(batch.groups)):
            raise BatchFormatError("column batch rows name a group it does not list")
        return batch

    def events(self) -> Iterable[dict[str, Any]]:
        """Rebuild the rows as contract-shaped dicts (for tests, replay checks and debugging;
        the engine works on the arrays)."""
        tables = {code: table for code, (_, table) in CODE_TABLES.items()}
        a = {name: arr.tolist() for name, arr in self.arrays.items()}
        strings = self.strings
        agent_queues = self.agent_queues
        for i in range(self.rows):
            etype = EVENT_TYPES[a["kind"][i]]
            key = self.groups[a["group"][i]]
            tenant, _, rest = key.partition("/")
            event: dict[str, Any] = {"event_id": strings["event_id"][i], "type": etype,
                                     "ts_ms": a["ts_ms"][i], "tenant": tenant}
            if etype == "agent.state":
                event["agent_id"] = strings["agent_id"][i]
                if agent_queues[i] is not None:
                    event["queues"] = agent_queues[i]
            else:
                event["queue"] = rest
                event["call_id"] = strings["call_id"][i]
                for name in ("agent_id", "caller", "disposition"):
                    if strings[name][i] is not None:
                        event[name] = strings[name][i]
                for name in ("wait_ms", "talk_ms", "hold_ms", "acw_ms"):
                    if a[name][i] >= 0:
                        event[name] = a[name][i]
            # -1: the optional coded field (a transfer's kind) was absent; indexing the
            # table with it would invent its last entry.
            if etype in tables and a["code"][i] >= 0:
                event[CODE_TABLES[etype][0]] = tables[etype][a["code"][i]]
            yield event


def _string_column(parts: dict[str, Any], name: str, rows: int) -> StringColumn:
    blob = parts[f"{name}.blob"]
    offsets = parts[f"{name}.offsets"].astype(np.int64)
    valid = parts[f"{name}.valid"].astype(np.bool_)
    if (offsets.size != rows + 1 or valid.size != rows or (rows and (
            offsets[0] != 0 or offsets[-1] != len(blob) or np.any(np.diff(offsets) < 0)))):
        raise BatchFormatError(f"string column {name} of the batch is damaged")
    return StringColumn(blob, offsets, valid)


def _queue_columns(lists: list[list[str] | None]) -> tuple[StringColumn, np.ndarray]:
    counts = np.asarray([-1 if q is None else len(q) for q in lists], dtype=np.int64)
    items = StringColumn.from_list([item for q in lists if q is not None for item in q])
    return items, counts


_DURATIONS = ("wait_ms", "talk_ms", "hold_ms", "acw_ms")
_TEXTS = ("caller", "disposition")
_AGENT_KIND = KIND_CODES["agent.state"]
#: Per event type: kind code, which durations and texts it carries, whether it names an
#: agent, and its coded field (name, value -> code) or None.
_PLANS = {
    etype: (KIND_CODES[etype],
            tuple(name in TYPE_FIELDS[etype] for name in _DURATIONS),
            tuple(name in TYPE_FIELDS[etype] for name in _TEXTS),
            "agent_id" in TYPE_FIELDS[etype],
            _CODE_INDEX.get(etype))
    for etype in EVENT_TYPES
}


def build_batch(source_topic: str, source_partition: int,
                rows: list[tuple[int, dict[str, Any]]], first_offset: int,
                last_offset: int) -> ColumnBatch:
    """Condense valid events ``(offset, event)`` of one partition into a :class:`ColumnBatch`.

    ``first_offset``/``last_offset`` span every message of the poll, rejected ones included, so
    the batch accounts for the whole offset range it consumed.
    """
    columns: dict[str, list[Any]] = {name: [] for name in _INT_COLUMNS + ("kind", "code", "group")}
    offset_col, ts_col, kind_col, code_col, group_col = (
        columns["offset"], columns["ts_ms"], columns["kind"], columns["code"], columns["group"])
    wait_col, talk_col, hold_col, acw_col = (columns[name] for name in _DURATIONS)
    strings: dict[str, list[str | None]] = {name: [] for name in _STRING_COLUMNS}
    event_id_col, call_id_col, agent_id_col = (
        strings["event_id"], strings["call_id"], strings["agent_id"])
    caller_col, disposition_col = (strings[name] for name in _TEXTS)
    agent_queues: list[list[str] | None] = []
    group_index: dict[str, int] = {}
    for offset, event in rows:
        etype = event["type"]
        # Only the fields of the event's own type were validated; a field of another type
        # (``wait_ms`` on ``call.ended``) is an unchecked extra and may hold any JSON value.
        kind, has_durations, has_texts, has_agent, coded = _PLANS[etype]
        get = event.get
        offset_col.append(offset)
        ts_col.append(event["ts_ms"])
        kind_col.append(kind)
        if kind == _AGENT_KIND:
            key = f"{event['tenant']}/agent/{event['agent_id']}"
            agent_queues.append(get("queues"))
            call_id_col.append(None)
        else:
            key = f"{event['tenant']}/{event['queue']}"
            agent_queues.append(None)
            call_id_col.append(event["call_id"])
        # Unrolled: this loop body runs once per event on stage 1's hot path.
        has_wait, has_talk, has_hold, has_acw = has_durations
        value = get("wait_ms") if has_wait else None
        wait_col.append(-1 if value is None else value)
        value = get("talk_ms") if has_talk else None
        talk_col.append(-1 if value is None else value)
        value = get("hold_ms") if has_hold else None
        hold_col.append(-1 if value is None else value)
        value = get("acw_ms") if has_acw else None
        acw_col.append(-1 if value is None else value)
        caller_col.append(get("caller") if has_texts[0] else None)
        disposition_col.append(get("disposition") if has_texts[1] else None)
        event_id_col.append(event["event_id"])
        agent_id_col.append(get("agent_id") if has_agent else None)
        value = get(coded[0]) if coded is not None else None
        code_col.append(-1 if value is None else coded[1][value])
        g = group_index.get(key)
        if g is None:
            g = group_index[key] = len(group_index)
        group_col.append(g)
    arrays = {name: np.asarray(values, dtype=np.int64) for name, values in columns.items()
              if name in _INT_COLUMNS}
    arrays["kind"] = np.asarray(kind_col, dtype=np.int8)
    arrays["code"] = np.asarray(code_col, dtype=np.int8)
    arrays["group"] = np.asarray(group_col, dtype=np.int32)
    queue_items, queue_counts = _queue_columns(agent_queues)
    return ColumnBatch(source_topic, source_partition, first_offset, last_offset,
                       list(group_index), arrays,
                       {name: StringColumn.from_list(values) for name, values in strings.items()},
                       queue_items, queue_counts)


def merge_batches(first: ColumnBatch, second: ColumnBatch) -> ColumnBatch:
    """The rows of two batches of the same poll in one batch, in offset order (stage 1
    condenses most rows on its fast path and the rest one by one)."""
    if second.rows == 0:
        return first
    if first.rows == 0:
        return second
    index = {key: g for g, key in enumerate(first.groups)}
    groups = list(first.groups)
    for key in second.groups:
        if key not in index:
            index[key] = len(groups)
            groups.append(key)
    remap = np.asarray([index[key] for key in second.groups], dtype=np.int32)
    order = np.argsort(np.concatenate([first.arrays["offset"], second.arrays["offset"]]),
                       kind="stable")
    arrays = {}
    for name, column in first.arrays.items():
        other = remap[second.arrays["group"]] if name == "group" else second.arrays[name]
        arrays[name] = np.concatenate([column, other.astype(column.dtype)])[order]
    # Groups numbered by first appearance, as one pass over the merged rows numbers them.
    used, first_row = np.unique(arrays["group"], return_index=True)
    by_appearance = used[np.argsort(first_row)]
    renumber = np.empty(len(groups), dtype=np.int32)
    renumber[by_appearance] = np.arange(by_appearance.size, dtype=np.int32)
    arrays["group"] = renumber[arrays["group"]]
    groups = [groups[g] for g in by_appearance.tolist()]
    texts = {name: StringColumn.concat(column, second.texts[name]).take(order)
             for name, column in first.texts.items()}
    # Item rows follow their event rows: move whole lists with a per-item row number.
    counts = np.concatenate([first.queue_counts, second.queue_counts])
    items = StringColumn.concat(first.queue_items, second.queue_items)
    sizes = np.maximum(counts, 0)
    item_rows = np.repeat(np.arange(counts.size), sizes)
    item_order = np.argsort(np.argsort(order, kind="stable")[item_rows], kind="stable")
    return ColumnBatch(first.source_topic, first.source_partition,
                       min(first.first_offset, second.first_offset),
                       max(first.last_offset, second.last_offset), groups, arrays, texts,
                       items.take(item_order), counts[order])
