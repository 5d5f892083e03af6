"""First-contact resolution by repeat callers: per-caller state with expiry.

A call is a *repeat* when the same ``caller`` called the same tenant less than
``fcr_window_s`` before; each repeat marks the earlier call unresolved. The counts this
tracker gives (``first_calls``, ``repeat_calls``) are the fields an interval record needs for
the ``first_contact_resolution`` indicator: ``first_calls / (first_calls + repeat_calls)``.
The engine does not apply it yet: its state is per queue, and one caller's calls to a tenant
spread over queues on several partitions, so it needs state keyed by caller. It lives here so
the rule and its expiry are defined and tested once.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["RepeatCallers"]


class RepeatCallers:
    """Last call time per (tenant, caller), forgotten ``window_s`` after that call."""

    def __init__(self, window_s: int = 86_400) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        self.window_ms = window_s * 1000
        # Ordered by last call time, so expiry pops from the front.
        self._last: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._clock_ms = 0

    def call(self, tenant: str, caller: str, ts_ms: int) -> bool:
        """Record a call; True when it repeats a call of the same caller within the window."""
        self.expire(ts_ms)
        key = (tenant, caller)
        previous = self._last.get(key)
        repeat = previous is not None and ts_ms - previous < self.window_ms
        if previous is None or ts_ms >= previous:
            self._last[key] = ts_ms
            self._last.move_to_end(key)
        return repeat

    def expire(self, now_ms: int) -> int:
        """Forget callers whose last call is a whole window before ``now_ms``; how many."""
        self._clock_ms = max(self._clock_ms, now_ms)
        dropped = 0
        while self._last:
            key, last = next(iter(self._last.items()))
            if self._clock_ms - last < self.window_ms:
                break
            del self._last[key]
            dropped += 1
        return dropped

    def __len__(self) -> int:
        return len(self._last)
