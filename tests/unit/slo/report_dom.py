"""Checks of the report page's markup, shared by the file test and the headless-browser test:
every queue has its five charts with one mark per interval."""

from __future__ import annotations

from collections import defaultdict
from html.parser import HTMLParser
from typing import Any, Iterable

CHARTS = ["service-level", "abandon-rate", "asa", "heat-map", "budget"]


class _Elements(HTMLParser):
    """Start tags with their attributes, grouped by the queue section they are in."""

    def __init__(self) -> None:
        super().__init__()
        self.by_queue: dict[tuple[str, str], list[tuple[str, dict[str, str]]]] = defaultdict(list)
        self.sections: dict[tuple[str, str], dict[str, str]] = {}
        self._open: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "section":
            self._open.append(a)
            if "data-queue" in a:
                self.sections[(a["data-tenant"], a["data-queue"])] = a
        queue = next((s for s in reversed(self._open) if "data-queue" in s), None)
        if queue is not None:
            self.by_queue[(queue["data-tenant"], queue["data-queue"])].append((tag, a))

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._open.pop()


def _classes(a: dict[str, str]) -> set[str]:
    return set(a.get("class", "").split())


def check_report_markup(html_text: str, records: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Assert the page shows every queue of ``records`` with its charts; return counts of
    what was checked (for the caller to assert it is not nothing)."""
    parser = _Elements()
    parser.feed(html_text)
    by_queue: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_queue[(r["tenant"], r["queue"])].append(r)
    assert set(parser.sections) == set(by_queue), "one section per queue"
    checked = defaultdict(int)
    for key, queue_records in by_queue.items():
        elements = parser.by_queue[key]
        assert parser.sections[key]["data-intervals"] == str(len(queue_records)), key
        charts = [a["data-chart"] for tag, a in elements if tag == "svg"]
        assert charts == CHARTS, (key, charts)

        def having(tag: str, *names: str) -> list[dict[str, str]]:
            return [a for t, a in elements if t == tag and set(names) <= _classes(a)]

        with_sl = [r for r in queue_records if r["service_level"] is not None]
        assert len(having("circle", "sl-point")) == len(with_sl), key
        assert len(having("circle", "sl-point", "met")) == sum(1 for r in with_sl if r["sl_met"])
        assert len(having("path", "target-line")) == 1
        assert having("path", "target-line")[0]["d"].count("L") == 2 * len(queue_records) - 1
        for chart, field in (("abandon-rate", "abandon_rate"), ("asa", "asa_s")):
            (path,) = having("path", "series", chart)
            assert path["data-points"] == str(sum(1 for r in queue_records
                                                  if r[field] is not None)), (key, chart)
        assert len(having("rect", "heat-cell")) == 7 * 96
        assert len(having("rect", "heat-cell", "empty")) == 7 * 96 - len(
            {r["interval_start_ms"] % 86_400_000 for r in with_sl})  # one day, UTC
        (burn,) = having("path", "series", "budget-remaining")
        assert burn["data-points"] == str(len(queue_records))
        checked["queues"] += 1
        checked["points"] += len(with_sl)
    return dict(checked)
