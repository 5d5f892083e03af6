"""Fixtures of the report's tests: a simulated day of interval records, made once."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams import cli

DAY = "2025-03-03"


@pytest.fixture(scope="session")
def simulated_day(tmp_path_factory) -> Path:
    """Interval records of one simulated day (built-in scenario, two tenants), by
    ``callslo simulate`` then ``callslo replay``, as a JSON-lines file."""
    folder = tmp_path_factory.mktemp("simulated-day")
    events, records = folder / "events.jsonl", folder / "intervals.jsonl"
    assert cli.main(["simulate", "--start", DAY, "--hours", "24", "--seed", "7",
                     "--out", str(events)]) == 0
    assert cli.main(["replay", str(events), "--out", str(records)]) == 0
    return records
