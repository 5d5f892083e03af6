"""First-contact resolution: repeat callers within the window, per tenant, with expiry."""

from __future__ import annotations

import pytest

from streams.slo.fcr import RepeatCallers

HOUR_MS = 3_600_000


def test_a_call_within_the_window_is_a_repeat_and_after_it_is_not():
    callers = RepeatCallers(window_s=24 * 3600)
    assert callers.call("acme", "+4930111", 0) is False
    assert callers.call("acme", "+4930111", 23 * HOUR_MS) is True
    # The window runs from the latest call: 23 h + 24 h.
    assert callers.call("acme", "+4930111", 46 * HOUR_MS) is True
    assert callers.call("acme", "+4930111", 70 * HOUR_MS) is False
    # Another tenant is another contact.
    assert callers.call("globex", "+4930111", 70 * HOUR_MS + 1) is False


def test_state_expires_a_window_after_the_last_call():
    callers = RepeatCallers(window_s=3600)
    callers.call("acme", "a", 0)
    callers.call("acme", "b", 30 * 60_000)
    assert len(callers) == 2
    assert callers.expire(HOUR_MS - 1) == 0
    assert callers.expire(HOUR_MS) == 1 and len(callers) == 1
    # A new call moves the clock: b is forgotten too, c is kept.
    assert callers.call("acme", "c", 2 * HOUR_MS) is False
    assert len(callers) == 1
    assert callers.call("acme", "b", 2 * HOUR_MS + 1) is False


def test_window_must_be_positive():
    with pytest.raises(ValueError, match="window_s"):
        RepeatCallers(0)
