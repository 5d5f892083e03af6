"""Stage 1's fast path: a poll's raw messages to a column batch with no Python object per event.

The messages of one partition poll are joined into one buffer and scanned and checked as a
whole by the kernels (:mod:`kernels.jsonscan`, :mod:`kernels.eventcheck`); the strings of the
batch stay byte spans of that buffer until they are copied into the batch's string columns
(:mod:`kernels.spans`). The checks come from the contract itself: :func:`contract_rules` turns
:data:`streams.contract.FIELD_RULES` into the kernel's tables, and the common fields mirror
:meth:`streams.contract.Decoder.validate`.

Every message the fast path does not accept (an unusual form, or a bad event) is returned as
*unsure*, and :class:`streams.ingest.Condenser` gives it to the exact decoder, which accepts it
or says why not. ``tests/unit/test_fastdecode.py`` holds the two paths to the same verdicts
and the same columns on generated and hostile messages.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

from kernels.eventcheck import (DURATION, IDENTIFIER, KEY_PART, KEY_PART_LIST, NO_PHONE,
                                NOT_A_FIELD, ONE_OF, SMALL_INT, TEXT, EventRules, check_events)
from kernels.jsonscan import INT, STRING, STRINGS, scan_objects
from kernels.spans import intern_keys
from streams.columns import CODE_TABLES, ColumnBatch, StringColumn
from streams.contract import (EVENT_TYPES, FIELD_RULES, MAX_DURATION_MS, MAX_IDENTIFIER_CHARS,
                              MAX_QUEUES, MAX_SMALL_INT, MAX_TEXT_CHARS, Decoder)

__all__ = ["FastCondenser", "contract_rules"]

#: The message fields that come before the per-type ones (see ``Decoder.validate``).
COMMON_FIELDS = ("v", "type", "event_id", "ts_ms", "tenant", "source")
DEFAULT_TENANT = "default"
_CHECK_CODES = {"identifier": IDENTIFIER, "key_part": KEY_PART, "duration": DURATION,
                "small_int": SMALL_INT, "text": TEXT, "one_of": ONE_OF,
                "key_part_list": KEY_PART_LIST}
_AGENT_TYPE = EVENT_TYPES.index("agent.state")


@lru_cache(maxsize=1)
def contract_rules() -> EventRules:
    """Contract v1 as the tables of :class:`kernels.eventcheck.EventRules`."""
    names = list(COMMON_FIELDS)
    for rules in FIELD_RULES.values():
        names.extend(name for name, _, _ in rules if name not in names)
    slot = {name: j for j, name in enumerate(names)}
    n_types, n_slots = len(EVENT_TYPES), len(names)
    checks = np.zeros((n_types, n_slots), dtype=np.int64)
    required = np.zeros((n_types, n_slots), dtype=np.bool_)
    enum_of = np.zeros((n_types, n_slots), dtype=np.int64)
    group_slot = np.zeros(n_types, dtype=np.int64)
    agent_key = np.zeros(n_types, dtype=np.bool_)
    coded_slot = np.full(n_types, -1, dtype=np.int64)
    enums: list[tuple[bytes, ...]] = []
    for t, event_type in enumerate(EVENT_TYPES):
        for name, spec, needed in FIELD_RULES[event_type]:
            j = slot[name]
            checks[t, j] = _CHECK_CODES[spec.kind] | (NO_PHONE if spec.no_phone else 0)
            required[t, j] = needed
            if spec.kind == "one_of":
                assert spec.allowed is not None
                enum_of[t, j] = len(enums)
                # Sorted, as CODE_TABLES: the index is the batch's code.
                enums.append(tuple(v.encode() for v in sorted(spec.allowed)))
        agent_key[t] = event_type == "agent.state"
        group_slot[t] = slot["agent_id" if agent_key[t] else "queue"]
        if event_type in CODE_TABLES:
            coded_slot[t] = slot[CODE_TABLES[event_type][0]]
    return EventRules(
        names=tuple(n.encode() for n in names), type_names=tuple(t.encode() for t in EVENT_TYPES),
        version_slot=slot["v"], type_slot=slot["type"], id_slot=slot["event_id"],
        ts_slot=slot["ts_ms"], tenant_slot=slot["tenant"], source_slot=slot["source"],
        checks=checks, required=required, enum_of=enum_of, enums=tuple(enums),
        group_slot=group_slot, agent_key=agent_key, coded_slot=coded_slot,
        default_tenant=DEFAULT_TENANT.encode(), max_identifier_chars=MAX_IDENTIFIER_CHARS,
        max_text_chars=MAX_TEXT_CHARS, max_duration=MAX_DURATION_MS,
        max_small_int=MAX_SMALL_INT, max_list_items=MAX_QUEUES)


def _joined(parts: Sequence[bytes | None], suffix: bytes) -> tuple[bytes, np.ndarray, np.ndarray]:
    """``(buffer, starts, ends)`` of byte strings back to back, then ``suffix``; ``None``
    gets start -1."""
    missing = None
    if None in parts:
        missing = np.fromiter((p is None for p in parts), dtype=np.bool_, count=len(parts))
        parts = [b"" if p is None else p for p in parts]
    lengths = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))  # type: ignore[arg-type]
    ends = np.cumsum(lengths)
    starts = ends - lengths
    if missing is not None:
        starts[missing] = -1
    return b"".join([*parts, suffix]), starts, ends  # type: ignore[list-item]


class FastCondenser:
    """The fast path of :class:`streams.ingest.Condenser` for one decoder's settings."""

    def __init__(self, decoder: Decoder) -> None:
        self.decoder = decoder
        self.rules = contract_rules()
        names = [n.decode() for n in self.rules.names]
        self._slot = {name: j for j, name in enumerate(names)}
        self._in_type = self.rules.checks != NOT_A_FIELD

    def condense(self, source_topic: str, partition: int, offsets: Sequence[int],
                 keys: Sequence[bytes | None], values: Sequence[bytes | None], now_ms: int
                 ) -> tuple[ColumnBatch | None, np.ndarray]:
        """The batch of the messages (``offsets[i]``, ``keys[i]``, ``values[i]``, in offset
        order) that the fast path accepts (``None``: none) and the indices of the others
        (unsure), ascending. The batch spans the offsets of all messages."""
        raw, starts, ends = _joined(values, DEFAULT_TENANT.encode())
        default_start = len(raw) - len(DEFAULT_TENANT)
        buf = np.frombuffer(raw, dtype=np.uint8)
        key_raw, key_starts, key_ends = _joined(keys, b"\0")
        key_buf = np.frombuffer(key_raw, dtype=np.uint8)
        scanned = scan_objects(buf, starts, ends, self.rules.names)
        d = self.decoder
        checked = check_events(buf, scanned, self.rules, key_buf, key_starts, key_ends,
                               d.max_message_bytes, np.where(starts < 0, 0, ends - starts),
                               now_ms, now_ms - d.max_age_ms, now_ms + d.max_future_skew_ms,
                               d.check_key, default_start)
        unsure = np.flatnonzero(~checked.accepted)
        rows = np.flatnonzero(checked.accepted)
        if rows.size == 0:
            return None, unsure
        batch_offsets = np.asarray(offsets, dtype=np.int64)[rows]
        return self._batch(source_topic, partition, offsets[0], offsets[-1], raw, buf, scanned,
                           checked, rows, batch_offsets), unsure

    def _batch(self, source_topic, partition, first_offset, last_offset, raw, buf, scanned,
               checked, rows, offsets) -> ColumnBatch:
        slot = self._slot
        types = checked.type_code[rows].astype(np.int64)
        kind = scanned.kind[rows]
        start = scanned.start[rows]
        end = scanned.end[rows]
        value = scanned.value[rows]
        here = np.arange(rows.size)

        def number(name: str) -> np.ndarray:
            j = slot[name]
            present = self._in_type[types, j] & (kind[:, j] == INT)
            return np.where(present, value[:, j], -1)

        def text(name: str) -> StringColumn:
            j = slot[name]
            present = self._in_type[types, j] & (kind[:, j] == STRING)
            return StringColumn.from_spans(buf, np.where(present, start[:, j], -1), end[:, j])

        arrays = {"offset": offsets, "ts_ms": value[:, slot["ts_ms"]],
                  **{name: number(name) for name in ("wait_ms", "talk_ms", "hold_ms", "acw_ms")},
                  "kind": types.astype(np.int8), "code": checked.code[rows]}
        texts = {"event_id": StringColumn.from_spans(buf, start[:, slot["event_id"]],
                                                     end[:, slot["event_id"]]),
                 **{name: text(name) for name in ("call_id", "agent_id", "caller", "disposition")}}
        group_slot = self.rules.group_slot[types]
        agent = self.rules.agent_key[types]
        ids, first_rows = intern_keys(agent.astype(np.int64), buf, checked.tenant_start[rows],
                                      checked.tenant_end[rows], start[here, group_slot],
                                      end[here, group_slot])
        arrays["group"] = ids
        tenant_start = checked.tenant_start[rows]
        tenant_end = checked.tenant_end[rows]
        groups = [(raw[tenant_start[r]:tenant_end[r]] + (b"/agent/" if agent[r] else b"/")
                   + raw[start[r, group_slot[r]]:end[r, group_slot[r]]]).decode()
                  for r in first_rows.tolist()]
        queues = slot["queues"]
        listed = (types == _AGENT_TYPE) & (kind[:, queues] == STRINGS)
        counts = np.where(listed, end[:, queues] - start[:, queues], -1)
        sizes = np.maximum(counts, 0)
        first_item = np.where(listed, start[:, queues], 0)
        item = (np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
                + np.repeat(first_item, sizes))
        items = StringColumn.from_spans(buf, scanned.items[item, 0], scanned.items[item, 1])
        return ColumnBatch(source_topic, partition, first_offset, last_offset, groups, arrays,
                           texts, items, counts)
