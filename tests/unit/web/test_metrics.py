"""/metrics: per-queue gauges and engine metrics in Prometheus text, parsed back with the
client library's own parser."""

from __future__ import annotations

import asyncio
from collections import Counter
from types import SimpleNamespace

from prometheus_client.parser import text_string_to_metric_families

from streams.web.metrics import WallboardCollector, WorkerStats, new_registry, render
from streams.web.view import WallboardView
from tests.unit.web.records import T0_MS, alert, realtime, staffing


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_queue_gauges_and_engine_metrics_parse(serve):
    engine = Counter({"late": 3, "records": 12, "realtime_records": 40, "applied": 900})
    served = serve(engine)
    view = served.view
    view.apply_realtime(realtime("acme", "support", sl=0.75, waiting=4, oldest_s=63.5))
    view.apply_realtime(realtime("acme", "quiet", sl=None, waiting=0))
    view.apply_alert(alert("a1"))
    view.apply_staffing(staffing(T0_MS, erlang_a=11))
    status, text, response = served.get("/metrics")
    assert status == 200 and response.content_type == "text/plain"
    got = samples(text)
    q = (("queue", "support"), ("tenant", "acme"))
    assert got[("callslo_queue_service_level", q)] == 0.75
    assert got[("callslo_queue_service_level_target", q)] == 0.8
    assert got[("callslo_queue_calls_waiting", q)] == 4
    assert got[("callslo_queue_oldest_wait_seconds", q)] == 63.5
    assert got[("callslo_queue_asa_seconds", q)] == 12.5
    assert got[("callslo_queue_abandon_rate", q)] == 0.1
    assert got[("callslo_queue_staffed_agents", q)] == 10
    assert got[("callslo_queue_required_agents", q)] == 11
    assert got[("callslo_queue_alerts_firing", q)] == 1
    assert got[("callslo_queue_agents", (*q[:1], ("state", "away"), q[1]))] == 2
    # A quiet queue has no service level (not a made-up 0) and no oldest wait.
    quiet = (("queue", "quiet"), ("tenant", "acme"))
    assert ("callslo_queue_service_level", quiet) not in got
    assert ("callslo_queue_oldest_wait_seconds", quiet) not in got
    assert got[("callslo_queue_calls_waiting", quiet)] == 0
    assert got[("callslo_engine_late_events_total", ())] == 3
    assert got[("callslo_engine_interval_records_total", ())] == 12
    assert got[("callslo_engine_step_counts_total", (("count", "applied"),))] == 900
    assert got[("callslo_wallboard_queues", ())] == 2


class FakeConsumer:
    """Only the two numbers the lag needs, as aiokafka's consumer gives them."""

    def __init__(self, high: dict, position: dict) -> None:
        self.high, self.pos = high, position

    def assignment(self):
        return set(self.high)

    def highwater(self, tp):
        return self.high[tp]

    async def position(self, tp):
        return self.pos[tp]


def test_ingest_counts_rate_lag_and_batch_time():
    stage = SimpleNamespace(counts=Counter({"consumed": 100, "valid": 95}),
                            rejections=Counter({"not_json": 4, "ts_in_future": 1}),
                            _consumer=FakeConsumer({"p0": 500, "p1": None, "p2": 70},
                                                   {"p0": 420, "p1": 0, "p2": 70}))
    stats = WorkerStats(Counter(), ingest=lambda: stage, batch_seconds=lambda: 0.012)
    asyncio.run(stats.refresh())
    stage.counts["consumed"] += 400
    asyncio.run(stats.refresh())
    assert stats.events_per_s > 0
    assert stats.lag_messages == 80  # p1 has no highwater yet: unknown, left out
    got = samples(render(new_registry(WallboardCollector(WallboardView(), stats))).decode())
    assert got[("callslo_ingest_events_total", ())] == 500
    assert got[("callslo_ingest_valid_events_total", ())] == 95
    assert got[("callslo_ingest_dead_letters_total", (("reason", "not_json"),))] == 4
    assert got[("callslo_ingest_consumer_lag_messages", ())] == 80
    assert got[("callslo_engine_batch_seconds", ())] == 0.012
    assert got[("callslo_ingest_events_per_second", ())] == stats.events_per_s


def test_registries_are_private_per_app():
    one = new_registry(WallboardCollector(WallboardView(), WorkerStats()))
    two_view = WallboardView()
    two_view.apply_realtime(realtime())
    two = new_registry(WallboardCollector(two_view, WorkerStats()))
    assert b'callslo_wallboard_queues 0.0' in render(one)
    assert b'callslo_wallboard_queues 1.0' in render(two)


def test_the_grafana_dashboard_uses_only_exported_metrics():
    import json
    import re
    from pathlib import Path

    view = WallboardView()
    view.apply_realtime(realtime())
    view.apply_alert(alert("a1"))
    view.apply_staffing(staffing(T0_MS))
    stage = SimpleNamespace(counts=Counter({"consumed": 1}), rejections=Counter({"not_json": 1}),
                            _consumer=FakeConsumer({"p0": 1}, {"p0": 1}))
    stats = WorkerStats(Counter({"late": 1}), ingest=lambda: stage, batch_seconds=lambda: 0.01)
    asyncio.run(stats.refresh())
    exported = {s.name for f in text_string_to_metric_families(
        render(new_registry(WallboardCollector(view, stats))).decode()) for s in f.samples}
    dashboard = json.loads((Path(__file__).resolve().parents[3] / "docs" /
                            "grafana-dashboard.json").read_text())
    used = {name for panel in dashboard["panels"] for target in panel["targets"]
            for name in re.findall(r"callslo_[a-z_]+", target["expr"])}
    used |= set(re.findall(r"callslo_[a-z_]+", dashboard["templating"]["list"][0]["query"]))
    assert used and used <= exported, used - exported
