"""Arbitrary queue_log lines: each becomes an event, a skip, a blank, or a dead letter with its
line number and a reason; the adapter never raises."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.adapters.asterisk import LINE_REASONS, QueueLogMapper, Skipped, parse_line
from streams.contract import Rejection
from tests.unit.fuzz.invariants import FUZZ
from tests.unit.fuzz.queue_log_check import publish_lines
from tests.unit.fuzz.strategies import queue_log_fields, queue_log_lines

# The adapter checks ts_ms against the wall clock, so the lines are timed around it.
NOW_S = int(time.time())


@settings(FUZZ, max_examples=400)
@given(line=queue_log_lines(NOW_S))
def test_one_line_maps_or_is_refused(line: bytes) -> None:
    outcome = QueueLogMapper(tenant="acme", source="fuzz").map_line(line)
    if isinstance(outcome, Rejection):
        assert outcome.reason in LINE_REASONS, outcome
    else:
        assert isinstance(outcome, (dict, Skipped))
    parsed = parse_line(line)
    assert isinstance(parsed, Rejection) or parsed.raw == line


@settings(FUZZ, max_examples=150)
@given(lines=st.lists(st.one_of(queue_log_lines(NOW_S), st.just(b""), st.just(b"  \r")),
                      max_size=12))
def test_every_line_of_a_file_is_accounted_for(lines: list[bytes]) -> None:
    publish_lines(lines, NOW_S * 1000)


@settings(FUZZ, max_examples=200)
@given(fields=queue_log_fields(NOW_S))
def test_agent_roster_survives_hostile_member_lines(fields: list[str]) -> None:
    """Agent lines change the roster a restart restores: it stays JSON-ready whatever the
    queue and member names were."""
    mapper = QueueLogMapper(tenant="acme", source="fuzz")
    for event in ("ADDMEMBER", "PAUSE", "REMOVEMEMBER", "AGENTLOGOFF"):
        fields[4] = event
        mapper.map_line("|".join(fields).encode("utf-8", "surrogatepass"))
    snapshot = mapper.roster.snapshot()
    assert type(snapshot) is dict
    assert type(mapper.roster).restore(snapshot).snapshot() == snapshot
