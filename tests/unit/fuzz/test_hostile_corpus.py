"""The hostile corpus, case by case, with the outcome docs/contract.md promises for each."""

from __future__ import annotations

import time

import pytest

from streams.contract import Rejection
from tests.unit.fuzz.corpus import hostile_messages, hostile_queue_log_lines
from tests.unit.fuzz.invariants import NOW_MS, check_message
from tests.unit.fuzz.queue_log_check import publish_lines

MESSAGES = hostile_messages(NOW_MS)
LINES_NOW_MS = int(time.time() * 1000)
LINES = hostile_queue_log_lines(LINES_NOW_MS)


def test_case_names_are_unique():
    assert len({case.name for case in MESSAGES}) == len(MESSAGES)
    assert len({case.name for case in LINES}) == len(LINES)


def test_the_corpus_covers_what_the_issue_lists():
    names = " ".join(case.name for case in MESSAGES)
    for needle in ("invalid-utf8", "utf16", "nested-10000-deep", "10mb-string-value",
                   "10mb-message", "above-2**64", "nan-literal", "infinity-literal",
                   "wait-negative", "7-days-and-1-ms", "ts-1970", "ts-year-9999",
                   "=boolean", "=object", "duplicate-key", "trailing-garbage", "empty",
                   "tombstone"):
        assert needle in names, needle
    sizes = {case.name: len(case.value or b"") for case in MESSAGES}
    assert sizes["10mb-string-value"] > 10_000_000 and sizes["10mb-message-of-padding"] > 10_000_000


@pytest.mark.parametrize("case", MESSAGES, ids=[case.name for case in MESSAGES])
def test_hostile_message(case):
    outcome = check_message(case.value, case.key)
    if case.reason is None:
        assert type(outcome) is dict, outcome
    else:
        assert isinstance(outcome, Rejection), f"{case.name} was accepted"
        assert (outcome.reason, outcome.field) == (case.reason, case.field), outcome.detail


@pytest.mark.parametrize("case", LINES, ids=[case.name for case in LINES])
def test_hostile_queue_log_line(case):
    publisher, records = publish_lines([case.line], LINES_NOW_MS)
    counts = publisher.counts
    if case.reason is not None:
        assert len(records) == 1 and dict(counts.dead_lettered) == {case.reason: 1}
        headers = records[0][3]
        assert headers["callslo.reason"] == case.reason.encode()
        assert headers["callslo.source.offset"] == b"1"  # the line number
        assert records[0][2] == case.line
    elif case.event_type is not None:
        assert dict(counts.events) == {case.event_type: 1}, counts.summary()
    else:
        assert sum(counts.skipped.values()) == 1 and not records
