"""Fault injection on the simulator's ordered event stream: duplicates, bounded disorder,
late delivery and malformed lines, each at a given rate and reproducible for a seed.

The model's events arrive in event-time order. Every event gets a delivery time: its own
``ts_ms``, plus a jitter of up to ``disorder_ms`` (bounded out-of-order), or plus
``late_delay_ms`` for a late one; a duplicate is the same event delivered again up to
:data:`DUPLICATE_DELAY_MS` later. Events leave in delivery-time order. Malformed lines are
*added* after the event they were made from, so the valid stream stays complete and every
bad line is one dead letter; their kinds are chosen so that stage 1 gives different reasons.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import numpy as np
import orjson

from streams.contract import event_key
from streams.errors import ConfigError

__all__ = ["FaultSpec", "RawLine", "FaultInjector", "MALFORMED_KINDS", "DUPLICATE_DELAY_MS",
           "item_ts_ms"]

DUPLICATE_DELAY_MS = 5_000
_BLOCK = 4096

#: Malformed kind -> the dead-letter reason stage 1 gives it.
MALFORMED_KINDS = {
    "truncated": "not_json",
    "array": "not_object",
    "unknown_type": "unknown_type",
    "ts_as_string": "wrong_type",
    "no_event_id": "missing_field",
    "empty_event_id": "bad_value",
}
_KIND_NAMES = tuple(MALFORMED_KINDS)


@dataclass(frozen=True)
class FaultSpec:
    """Rates are per valid event (0..1); delays in milliseconds."""

    duplicates: float = 0.0
    disorder_ms: int = 0
    malformed: float = 0.0
    late: float = 0.0
    late_delay_ms: int = 1_800_000

    def __post_init__(self) -> None:
        for name in ("duplicates", "malformed", "late"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"--{name} must be a share between 0 and 1, got {value:g}")
        if self.disorder_ms < 0:
            raise ConfigError(f"--disorder-ms must be >= 0, got {self.disorder_ms}")
        if self.late_delay_ms <= 0:
            raise ConfigError(f"--late-delay-s must be > 0, got {self.late_delay_ms / 1000:g}")

    @property
    def active(self) -> bool:
        return bool(self.duplicates or self.disorder_ms or self.malformed or self.late)


@dataclass(frozen=True, slots=True)
class RawLine:
    """A message that is not a valid event: its Kafka key, its bytes, the event time it was
    made at (for pacing) and the malformed kind."""

    key: str | None
    value: bytes
    ts_ms: int
    kind: str


def item_ts_ms(item: dict[str, Any] | RawLine) -> int:
    """Event time of a stream item (an event dict or a :class:`RawLine`)."""
    return item["ts_ms"] if type(item) is dict else item.ts_ms


def _malformed(event: dict[str, Any], kind: str) -> RawLine:
    bad = dict(event)
    bad["event_id"] = f"{event['event_id']}-bad"
    if kind == "truncated":
        value = orjson.dumps(bad)[:-7]
    elif kind == "array":
        value = orjson.dumps([bad])
    elif kind == "unknown_type":
        bad["type"] = "call.parked"
        value = orjson.dumps(bad)
    elif kind == "ts_as_string":
        bad["ts_ms"] = str(event["ts_ms"])
        value = orjson.dumps(bad)
    elif kind == "no_event_id":
        del bad["event_id"]
        value = orjson.dumps(bad)
    else:
        bad["event_id"] = ""
        value = orjson.dumps(bad)
    return RawLine(event_key(event), value, event["ts_ms"], kind)


class FaultInjector:
    """Applies a :class:`FaultSpec` to chunks of ordered events; ``counts`` tallies what was
    injected (``duplicates``, ``late``, ``malformed``, ``malformed.<kind>``)."""

    def __init__(self, spec: FaultSpec, seed: int) -> None:
        self.spec = spec
        self.counts: Counter[str] = Counter()
        # A separate stream from the model's, so faults never change the simulated calls.
        self._rng = np.random.default_rng(np.random.SeedSequence([seed, 0xFA17]))
        self._draws: list[tuple] = []
        self._next = 0

    def _draw(self) -> tuple:
        if self._next == len(self._draws):
            rng, n = self._rng, _BLOCK
            columns = (rng.random(n), rng.random(n), rng.random(n),
                       rng.integers(0, self.spec.disorder_ms + 1, n),
                       rng.integers(0, DUPLICATE_DELAY_MS + 1, n),
                       rng.integers(0, len(_KIND_NAMES), n))
            self._draws = list(zip(*(c.tolist() for c in columns)))
            self._next = 0
        self._next += 1
        return self._draws[self._next - 1]

    def apply(self, chunks: Iterable[list[dict[str, Any]]]) -> Iterator[list[dict[str, Any] | RawLine]]:
        """Yield chunks in delivery order (the input unchanged when no fault is asked for)."""
        spec = self.spec
        if not spec.active:
            yield from chunks
            return
        pending: list[tuple[int, int, Any]] = []  # (deliver_at_ms, sequence, item)
        sequence = 0
        counts = self.counts
        for chunk in chunks:
            out: list[dict[str, Any] | RawLine] = []
            for event in chunk:
                ts_ms = event["ts_ms"]
                while pending and pending[0][0] <= ts_ms:
                    out.append(heapq.heappop(pending)[2])
                u_late, u_dup, u_bad, jitter, dup_delay, kind = self._draw()
                sequence += 1
                if u_late < spec.late:
                    counts["late"] += 1
                    heapq.heappush(pending, (ts_ms + spec.late_delay_ms, sequence, event))
                elif jitter:
                    heapq.heappush(pending, (ts_ms + jitter, sequence, event))
                else:
                    out.append(event)
                if u_dup < spec.duplicates:
                    counts["duplicates"] += 1
                    sequence += 1
                    heapq.heappush(pending, (ts_ms + max(dup_delay, jitter), sequence, event))
                if u_bad < spec.malformed:
                    name = _KIND_NAMES[kind]
                    counts["malformed"] += 1
                    counts[f"malformed.{name}"] += 1
                    out.append(_malformed(event, name))
            if out:
                yield out
        if pending:
            yield [item for _, _, item in sorted(pending)]
