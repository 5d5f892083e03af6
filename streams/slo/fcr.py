"""First-contact resolution by repeat callers: contacts in, one final record per queue interval.

A *contact* is a ``call.queued`` event with a ``caller`` that the engine applied (not a
duplicate, not late), as the engine of its queue's partition reports it. A contact is
*unresolved* when the same caller contacts the same tenant again less than ``fcr_window_s``
after it, in any queue (later: by ``(ts_ms, call_id)``); otherwise it was *resolved* at the
first contact. The verdict belongs to the call that failed to resolve the matter, so to its
queue and interval, not to the queue the caller tried next. The same ``call_id`` again within
the window (a call moved to another queue, say) is one contact, counted where it came first
by ``(ts_ms, queue)``.

A verdict depends on the contacts of the window that follows, so a queue interval's counts
are final once no contact earlier than its end + ``fcr_window_s`` can still arrive: records
come one window after their interval. A caller's contacts come from the engines of every
partition, so :class:`FcrState` keeps a *mark* per source partition: the engine of partition
``p`` promises that every contact it sends after mark ``M`` has ``ts_ms >= M`` (its idle
horizon: an earlier ``call.queued`` would be late there and never applied). The watermark is
the smallest mark over all source partitions; an interval whose end + window it reaches is
final and gets its record on ``slo.queue-fcr.v1``. Because the verdicts are a function of the
set of contacts, any arrival order gives the same records, and replay (which judges everything
at the end) gives them too.

Memory: every caller with a contact since a window and an interval before the watermark, with
those contacts (about 300 bytes for a caller with one). Contacts older than the watermark can
only be resends (an engine applying a batch again after a restart) and are skipped, as are
repeated call ids.
"""

from __future__ import annotations

from bisect import insort
from collections import Counter
from typing import Any, Iterable

from streams.contacts import Contact, ContactBatch

__all__ = ["FCR_SCHEMA", "FcrState", "records_by_interval"]

FCR_SCHEMA = "slo.queue-fcr.v1"
_NO_TIME = -(2**62)


class FcrState:
    """The contacts of the tenants of one contacts partition, and their pending intervals."""

    def __init__(self, *, window_s: int, interval_s: int, source_partitions: int) -> None:
        self.window_ms = window_s * 1000
        self.interval_ms = interval_s * 1000
        self.window_s = window_s
        self.source_partitions = source_partitions
        self.marks: dict[int, int] = {}
        self.watermark_ms = _NO_TIME
        #: (tenant, caller) -> [(ts_ms, call_id, queue)] ascending: the last window's contacts.
        self.callers: dict[tuple[str, str], list[tuple[int, str, str]]] = {}
        #: interval end -> (tenant, queue, caller, ts_ms, call_id) of its contacts.
        self.pending: dict[int, list[tuple[str, str, str, int, str]]] = {}
        self.counts: Counter[str] = Counter()

    def apply(self, batch: ContactBatch) -> list[dict[str, Any]]:
        """Take one engine step's contacts and mark; return the records it made final."""
        for contact in batch.contacts:
            self.add(contact)
        if batch.mark_ms is None:
            return []
        if batch.mark_ms > self.marks.get(batch.source_partition, _NO_TIME):
            self.marks[batch.source_partition] = batch.mark_ms
        if len(self.marks) < self.source_partitions:
            return []
        watermark = min(self.marks.values())
        if watermark <= self.watermark_ms:
            return []
        self.watermark_ms = watermark
        records = self._finalize(lambda end: end + self.window_ms <= watermark)
        self._expire()
        return records

    def add(self, contact: Contact) -> None:
        if contact.ts_ms < self.watermark_ms:
            self.counts["resent"] += 1  # its interval is final; only a resend comes this late
            return
        key = (contact.tenant, contact.caller)
        history = self.callers.setdefault(key, [])
        # The same call again (moved to another queue, say) within the window is one contact:
        # the earliest by (ts_ms, queue), whatever order they arrive in.
        for entry in history:
            ts_ms, call_id, queue = entry
            if call_id == contact.call_id and abs(ts_ms - contact.ts_ms) < self.window_ms:
                self.counts["same_call"] += 1
                if (contact.ts_ms, contact.queue) >= (ts_ms, queue):
                    return
                # Earlier than the one kept, so that one is still pending (a contact before a
                # final interval's end would be a resend): the new one takes its place.
                history.remove(entry)
                self.pending[self._end(ts_ms)].remove((contact.tenant, queue, contact.caller,
                                                       ts_ms, call_id))
                self.counts["contacts"] -= 1
                break
        insort(history, (contact.ts_ms, contact.call_id, contact.queue))
        self.pending.setdefault(self._end(contact.ts_ms), []).append(
            (contact.tenant, contact.queue, contact.caller, contact.ts_ms, contact.call_id))
        self.counts["contacts"] += 1

    def _end(self, ts_ms: int) -> int:
        return ts_ms - ts_ms % self.interval_ms + self.interval_ms

    def finish(self) -> list[dict[str, Any]]:
        """Every pending interval as final (the end of a replay)."""
        return self._finalize(lambda end: True)

    def _finalize(self, due: Any) -> list[dict[str, Any]]:
        records = []
        for end in sorted(e for e in self.pending if due(e)):
            counts: dict[tuple[str, str], list[int]] = {}
            for tenant, queue, caller, ts_ms, call_id in self.pending.pop(end):
                resolved_unresolved = counts.setdefault((tenant, queue), [0, 0])
                unresolved = self._called_again(tenant, caller, ts_ms, call_id)
                resolved_unresolved[1 if unresolved else 0] += 1
            for (tenant, queue), (resolved, unresolved) in sorted(counts.items()):
                records.append(self._record(tenant, queue, end, resolved, unresolved))
        return records

    def _called_again(self, tenant: str, caller: str, ts_ms: int, call_id: str) -> bool:
        """Whether the caller has a later contact less than a window after this one."""
        for entry in self.callers[(tenant, caller)]:
            if (entry[0], entry[1]) > (ts_ms, call_id):
                return entry[0] - ts_ms < self.window_ms
        return False

    def _expire(self) -> None:
        """Forget contacts a window and an interval before the watermark: the contacts still
        to be judged are in intervals ending less than a window before it, and a contact yet
        to come (at or after the watermark) is the same call as none of the forgotten."""
        oldest = self.watermark_ms - self.window_ms - self.interval_ms
        for key in list(self.callers):
            history = self.callers[key]
            if history[0][0] <= oldest:
                kept = [entry for entry in history if entry[0] > oldest]
                if kept:
                    self.callers[key] = kept
                else:
                    del self.callers[key]

    def _record(self, tenant: str, queue: str, end: int, resolved: int, unresolved: int
                ) -> dict[str, Any]:
        return {"schema": FCR_SCHEMA, "tenant": tenant, "queue": queue,
                "interval_start_ms": end - self.interval_ms, "interval_end_ms": end,
                "fcr_window_s": self.window_s, "contacts": resolved + unresolved,
                "resolved_calls": resolved, "unresolved_calls": unresolved,
                "first_contact_resolution": resolved / (resolved + unresolved)}


def records_by_interval(records: Iterable[dict[str, Any]]) -> dict[tuple[str, str, int], dict]:
    """FCR records by (tenant, queue, interval start); a repeat of a key keeps the first."""
    out: dict[tuple[str, str, int], dict] = {}
    for record in records:
        out.setdefault((record["tenant"], record["queue"], record["interval_start_ms"]), record)
    return out
