"""Column batches: the compact form stage 1 gives a batch of valid events for stage 2.

One column batch holds the valid events of one poll of one source partition, as numpy arrays
(numbers) and string lists, plus where they came from (topic, partition, first and last
offset), so stage 2 can tell a redelivered batch from a new one.

A batch without rows is a *heartbeat*: stage 1 found the source partition caught up at wall
time ``clock_ms``, with no new event since ``quiet_since_ms``. It is how stage 2 learns that a
partition is idle rather than stalled, in the partition's own order.

Wire format, version 1::

    b"CSB1" | u32 little-endian header length | header (JSON) | array bytes

The header names each array with its dtype and byte range; arrays are little-endian and
follow the header back to back. Integer columns use -1 for "absent".
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import orjson

from streams.contract import AGENT_STATES, DEQUEUE_REASONS, EVENT_TYPES, TRANSFER_KINDS, TYPE_FIELDS
from streams.errors import BatchFormatError

__all__ = ["ColumnBatch", "KIND_CODES", "CODE_TABLES", "build_batch"]

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


@dataclass(eq=False)
class ColumnBatch:
    """Valid events of one source partition, one row per event in arrival order.

    ``groups`` lists the distinct keys ``<tenant>/<queue>`` (call events) and
    ``<tenant>/agent/<agent_id>`` (agent events); ``group`` indexes it per row. String columns
    hold ``None`` where the event has no such field. ``agent_queues`` holds the ``queues`` list
    of ``agent.state`` rows (``None`` elsewhere).
    """

    source_topic: str
    source_partition: int
    first_offset: int
    last_offset: int
    groups: list[str]
    arrays: dict[str, np.ndarray]
    strings: dict[str, list[str | None]]
    agent_queues: list[list[str] | None] = field(default_factory=list)
    clock_ms: int = -1
    quiet_since_ms: int = -1

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

    def to_bytes(self) -> bytes:
        """Serialise (format version 1)."""
        layout = []
        chunks = []
        position = 0
        for name, dtype in _DTYPES.items():
            data = np.ascontiguousarray(self.arrays[name], dtype=dtype).tobytes()
            layout.append((name, dtype, position, len(data)))
            chunks.append(data)
            position += len(data)
        header = orjson.dumps({
            "v": 1,
            "source_topic": self.source_topic,
            "source_partition": self.source_partition,
            "first_offset": self.first_offset,
            "last_offset": self.last_offset,
            "rows": self.rows,
            "groups": self.groups,
            "strings": self.strings,
            "agent_queues": self.agent_queues,
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
            arrays = {}
            for name, dtype, start, length in header["layout"]:
                if start + length > len(body):
                    raise BatchFormatError(f"column {name} runs past the end of the batch")
                arrays[name] = np.frombuffer(body[start:start + length], dtype=dtype)
            batch = cls(header["source_topic"], header["source_partition"], header["first_offset"],
                        header["last_offset"], header["groups"], arrays, header["strings"],
                        header["agent_queues"], header.get("clock_ms", -1),
                        header.get("quiet_since_ms", -1))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise BatchFormatError(f"column batch is damaged: {exc}") from exc
        if any(len(a) != header["rows"] for a in arrays.values()):
            raise BatchFormatError("column batch arrays disagree on the number of rows")
        return batch

    def events(self) -> Iterable[dict[str, Any]]:
        """Rebuild the rows as contract-shaped dicts (for tests, replay checks and debugging;
        the engine works on the arrays)."""
        tables = {code: table for code, (_, table) in CODE_TABLES.items()}
        a = {name: arr.tolist() for name, arr in self.arrays.items()}
        for i in range(self.rows):
            etype = EVENT_TYPES[a["kind"][i]]
            key = self.groups[a["group"][i]]
            tenant, _, rest = key.partition("/")
            event: dict[str, Any] = {"event_id": self.strings["event_id"][i], "type": etype,
                                     "ts_ms": a["ts_ms"][i], "tenant": tenant}
            if etype == "agent.state":
                event["agent_id"] = self.strings["agent_id"][i]
                if self.agent_queues[i] is not None:
                    event["queues"] = self.agent_queues[i]
            else:
                event["queue"] = rest
                event["call_id"] = self.strings["call_id"][i]
                for name in ("agent_id", "caller", "disposition"):
                    if self.strings[name][i] is not None:
                        event[name] = self.strings[name][i]
                for name in ("wait_ms", "talk_ms", "hold_ms", "acw_ms"):
                    if a[name][i] >= 0:
                        event[name] = a[name][i]
            # -1: the optional coded field (a transfer's kind) was absent; indexing the
            # table with it would invent its last entry.
            if etype in tables and a["code"][i] >= 0:
                event[CODE_TABLES[etype][0]] = tables[etype][a["code"][i]]
            yield event


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
    return ColumnBatch(source_topic, source_partition, first_offset, last_offset,
                       list(group_index), arrays, strings, agent_queues)
