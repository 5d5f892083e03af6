"""The wallboard's in-memory view: the latest realtime snapshot, today's interval records, the
firing alerts and the staffing need of every queue, and the summaries the API serves.

The view is fed record by record (by :mod:`streams.web.reader`) and never does I/O, so it is
the same in a test as in the worker. Every change bumps a version number; a client that
remembers the last version it saw asks for :meth:`WallboardView.changes_since` and gets only
the queues that changed, which is what the live updates (SSE) push.
"""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Iterable

__all__ = ["DAY_MS", "AMBER_BAND", "QueueState", "WallboardView", "queue_status"]

DAY_MS = 86_400_000
#: A queue whose rolling service level is below target by less than this (a fraction, so
#: 0.05 = 5 percentage points) is amber; further below is red.
AMBER_BAND = 0.05
#: Interval records kept per queue: two days of 15-minute intervals, whatever the interval.
MAX_INTERVALS = 192
_STATUS_RANK = {"red": 0, "amber": 1, "green": 2, "none": 3}


@dataclass
class QueueState:
    """What the view knows of one queue."""

    tenant: str
    queue: str
    realtime: dict[str, Any] | None = None
    intervals: dict[int, dict[str, Any]] = field(default_factory=dict)
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)
    staffing: dict[str, Any] | None = None
    version: int = 0

    @property
    def clock_ms(self) -> int | None:
        """The queue's event-time clock: its latest snapshot, else its latest interval end."""
        if self.realtime is not None:
            return int(self.realtime["as_of_ms"])
        if self.intervals:
            return max(int(r["interval_end_ms"]) for r in self.intervals.values()) - 1
        return None


def queue_status(service_level: float | None, target: float | None,
                 alerts: Iterable[dict[str, Any]] = ()) -> str:
    """``green`` at or above target, ``amber`` less than :data:`AMBER_BAND` below it (or with a
    firing alert that is not critical), ``red`` further below (or with a critical alert),
    ``none`` when the window has no calls and no alert fires."""
    severities = {str(a.get("severity", "")) for a in alerts}
    if "critical" in severities:
        return "red"
    if service_level is None or target is None:
        return "amber" if severities else "none"
    if service_level >= target:
        return "amber" if severities else "green"
    return "amber" if target - service_level < AMBER_BAND else "red"


class WallboardView:
    """Latest state per queue, bounded to ``max_queues`` (the least recently updated queue is
    forgotten first); versions and a wake-up for the clients that follow changes."""

    def __init__(self, max_queues: int = 5000) -> None:
        if max_queues < 1:
            raise ValueError("max_queues must be >= 1")
        self.max_queues = max_queues
        self.queues: OrderedDict[str, QueueState] = OrderedDict()
        self.version = 0
        self.evicted = 0
        self.ignored: dict[str, int] = {}
        self._wake: asyncio.Event | None = None

    # --- feeding ---------------------------------------------------------------------------

    def apply_realtime(self, record: dict[str, Any]) -> bool:
        """A realtime snapshot; an older one than the queue's current (by ``as_of_ms``, then
        ``emitted_at_ms``) is ignored, as after a rebalance two workers' snapshots interleave."""
        q = self._queue(record, "realtime")
        if q is None:
            return False
        if q.realtime is not None and _snapshot_order(record) < _snapshot_order(q.realtime):
            self._ignore("realtime_older")
            return False
        q.realtime = record
        return self._changed(q)

    def apply_interval(self, record: dict[str, Any]) -> bool:
        """A final interval record; the same interval again replaces it (it is identical)."""
        q = self._queue(record, "interval")
        if q is None or not isinstance(record.get("interval_start_ms"), int):
            if q is not None:
                self._ignore("interval_without_start")
            return False
        q.intervals[record["interval_start_ms"]] = record
        if len(q.intervals) > MAX_INTERVALS:
            for start in sorted(q.intervals)[:len(q.intervals) - MAX_INTERVALS]:
                del q.intervals[start]
        return self._changed(q)

    def apply_alert(self, alert: dict[str, Any]) -> bool:
        """An alert state change: ``firing`` adds or replaces it, ``resolved`` removes it."""
        q = self._queue(alert, "alert")
        if q is None:
            return False
        alert_id, state = alert.get("id"), alert.get("state")
        if not isinstance(alert_id, str) or state not in ("firing", "resolved"):
            self._ignore("alert_malformed")
            return False
        if state == "firing":
            q.alerts[alert_id] = alert
        elif q.alerts.pop(alert_id, None) is None:
            return False
        return self._changed(q)

    def apply_staffing(self, record: dict[str, Any]) -> bool:
        """A staffing record; only the latest interval's is kept."""
        q = self._queue(record, "staffing")
        if q is None:
            return False
        start = record.get("interval_start_ms")
        if not isinstance(start, int):
            self._ignore("staffing_without_start")
            return False
        if q.staffing is not None and start < q.staffing["interval_start_ms"]:
            return False
        q.staffing = record
        return self._changed(q)

    # --- reading ---------------------------------------------------------------------------

    def summary(self, q: QueueState) -> dict[str, Any]:
        """One tile: the queue's rolling (15-minute) figures, agents and firing alerts."""
        rt = q.realtime or {}
        sl, target = rt.get("w15m_service_level"), rt.get("sl_target")
        if target is None and q.intervals:
            target = q.intervals[max(q.intervals)].get("sl_target")
        alerts = sorted(q.alerts.values(), key=lambda a: (a.get("started_ms") or 0, a["id"]))
        staffing = q.staffing or {}
        return {
            "key": f"{q.tenant}/{q.queue}",
            "tenant": q.tenant,
            "queue": q.queue,
            "version": q.version,
            "status": queue_status(sl, target, alerts),
            "as_of_ms": rt.get("as_of_ms"),
            "emitted_at_ms": rt.get("emitted_at_ms"),
            "service_level": sl,
            "sl_target": target,
            "threshold_s": rt.get("threshold_s"),
            "offered": rt.get("w15m_offered"),
            "calls_waiting": rt.get("calls_waiting"),
            "oldest_wait_s": rt.get("oldest_wait_s"),
            "asa_s": rt.get("w15m_asa_s"),
            "abandon_rate": rt.get("w15m_abandon_rate"),
            "agents": rt.get("agents"),
            "staffed": rt.get("staffed"),
            "required": _required(staffing),
            "alerts": alerts,
        }

    def detail(self, tenant: str, queue: str) -> dict[str, Any] | None:
        """A queue's tile, its whole latest snapshot, today's intervals and staffing."""
        q = self.queues.get(f"{tenant}/{queue}")
        if q is None:
            return None
        return {**self.summary(q), "realtime": q.realtime, "staffing": q.staffing,
                "intervals": self.today(q)}

    def today(self, q: QueueState) -> list[dict[str, Any]]:
        """The interval records of the UTC day that holds the queue's clock, by start."""
        clock = q.clock_ms
        if clock is None:
            return []
        day_start = clock - clock % DAY_MS
        return [q.intervals[s] for s in sorted(q.intervals) if s >= day_start]

    def listing(self, tenant: str | None = None, sort: str = "worst") -> list[dict[str, Any]]:
        """Every queue's tile (of one tenant if given): ``worst`` first (red before amber
        before green, then furthest below target, then most calls waiting), or by ``name``."""
        if sort not in ("worst", "name"):
            raise ValueError(f"sort must be worst or name, got {sort!r}")
        tiles = [self.summary(q) for q in self.queues.values()
                 if tenant is None or q.tenant == tenant]
        if sort == "name":
            return sorted(tiles, key=lambda t: (t["tenant"], t["queue"]))
        return sorted(tiles, key=_worst_first)

    def tenants(self) -> list[str]:
        return sorted({q.tenant for q in self.queues.values()})

    def changes_since(self, version: int) -> list[dict[str, Any]]:
        """Tiles of the queues changed after ``version``, in the order they changed."""
        return sorted((self.summary(q) for q in self.queues.values() if q.version > version),
                      key=lambda t: t["version"])

    async def wait_for_change(self, version: int, timeout_s: float) -> bool:
        """Wait until the view is newer than ``version`` (True) or ``timeout_s`` passes."""
        if self.version > version:
            return True
        if self._wake is None:
            self._wake = asyncio.Event()
        wake = self._wake
        try:
            await asyncio.wait_for(wake.wait(), timeout_s)
        except asyncio.TimeoutError:
            pass
        return self.version > version

    def wake(self) -> None:
        """Wake every waiter of :meth:`wait_for_change` (at shutdown, so streams can end)."""
        if self._wake is not None:
            self._wake.set()
            self._wake = None

    # --- internals -------------------------------------------------------------------------

    def _queue(self, record: dict[str, Any], kind: str) -> QueueState | None:
        tenant, queue = record.get("tenant"), record.get("queue")
        if not isinstance(tenant, str) or not isinstance(queue, str) or not tenant or not queue:
            self._ignore(f"{kind}_without_queue")
            return None
        key = f"{tenant}/{queue}"
        q = self.queues.get(key)
        if q is None:
            q = self.queues[key] = QueueState(tenant, queue)
            while len(self.queues) > self.max_queues:
                self.queues.popitem(last=False)
                self.evicted += 1
        return q

    def _changed(self, q: QueueState) -> bool:
        self.version += 1
        q.version = self.version
        self.queues.move_to_end(f"{q.tenant}/{q.queue}")
        self.wake()  # every waiter once; the next waiter gets a fresh event
        return True

    def _ignore(self, reason: str) -> None:
        self.ignored[reason] = self.ignored.get(reason, 0) + 1


def _snapshot_order(record: dict[str, Any]) -> tuple[int, int]:
    return int(record.get("as_of_ms") or 0), int(record.get("emitted_at_ms") or 0)


def _required(staffing: dict[str, Any]) -> int | None:
    """Agents required for the queue's latest interval: Erlang A when known, else Erlang C."""
    for name in ("required_erlang_a", "required_erlang_c"):
        value = staffing.get(name)
        if isinstance(value, (int, float)) and math.isfinite(value):
            return int(value)
    return None


def _worst_first(tile: dict[str, Any]) -> tuple[Any, ...]:
    sl, target = tile["service_level"], tile["sl_target"]
    gap = sl - target if sl is not None and target is not None else math.inf
    return (_STATUS_RANK[tile["status"]], gap, -(tile["calls_waiting"] or 0),
            tile["tenant"], tile["queue"])
