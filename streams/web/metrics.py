"""Prometheus metrics of a worker: per-queue gauges from the wallboard's view and the engine's
own counters, in a registry private to the app (docs/wallboard.md lists every metric).

Values are read when Prometheus scrapes (a collector, not gauges set on every record), so
nothing is kept twice. What needs awaiting (the ingest consumer's lag) or a rate over time
(events per second) is refreshed by :meth:`WorkerStats.refresh` every few seconds.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any, Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streams.web.view import WallboardView

__all__ = ["WorkerStats", "WallboardCollector", "new_registry", "render", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: (metric suffix, tile field, help) of the per-queue gauges taken straight from a tile.
_QUEUE_GAUGES = (
    ("service_level", "service_level", "Rolling 15-minute service level (fraction 0..1)"),
    ("service_level_target", "sl_target", "The queue's service-level target (fraction)"),
    ("calls_waiting", "calls_waiting", "Calls waiting in the queue now"),
    ("oldest_wait_seconds", "oldest_wait_s", "How long the oldest waiting call has waited"),
    ("asa_seconds", "asa_s", "Rolling 15-minute average speed of answer"),
    ("abandon_rate", "abandon_rate", "Rolling 15-minute abandon rate (fraction 0..1)"),
    ("staffed_agents", "staffed", "Agents logged in to the queue (any state)"),
    ("required_agents", "required", "Agents required for the current interval (Erlang)"),
)


class WorkerStats:
    """The engine's counters as this worker sees them: stage 1 (ingest) and stage 2.

    ``ingest`` returns the running stage-1 object (``counts``, ``rejections`` and its Kafka
    consumer), or ``None`` before it started; ``batch_seconds`` returns the median time
    stage 2 spent on one column batch lately, or ``None``."""

    def __init__(self, engine_counts: Counter[str] | None = None,
                 ingest: Callable[[], Any] = lambda: None,
                 batch_seconds: Callable[[], float | None] = lambda: None) -> None:
        self.engine_counts: Counter[str] = engine_counts if engine_counts is not None else Counter()
        self.ingest = ingest
        self.batch_seconds = batch_seconds
        self.events_per_s = 0.0
        self.lag_messages: int | None = None
        self._last: tuple[float, int] | None = None

    def ingest_counts(self) -> tuple[Counter[str], Counter[str]]:
        stage = self.ingest()
        if stage is None:
            return Counter(), Counter()
        return stage.counts, stage.rejections

    async def refresh(self) -> None:
        """Events per second since the last refresh, and the ingest consumer's lag."""
        counts, _ = self.ingest_counts()
        now, consumed = time.monotonic(), counts["consumed"]
        if self._last is not None and now > self._last[0]:
            self.events_per_s = max(0, consumed - self._last[1]) / (now - self._last[0])
        self._last = (now, consumed)
        stage = self.ingest()
        # IngestStage keeps its consumer private; only its position and highwater are read.
        consumer = getattr(stage, "_consumer", None) if stage is not None else None
        if consumer is None:
            self.lag_messages = None
            return
        lag = 0
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is None:
                continue  # no fetch yet: unknown, not zero
            lag += max(0, high - await consumer.position(tp))
        self.lag_messages = lag


class WallboardCollector(Collector):
    """Collects the per-queue gauges and the engine metrics at scrape time."""

    def __init__(self, view: WallboardView, stats: WorkerStats,
                 reader_counts: Counter[str] | None = None) -> None:
        self.view = view
        self.stats = stats
        self.reader_counts = reader_counts if reader_counts is not None else Counter()

    def collect(self) -> Iterator[Metric]:
        yield from self._queue_metrics()
        yield from self._engine_metrics()

    def _queue_metrics(self) -> Iterator[Metric]:
        tiles = self.view.listing(sort="name")
        labels = ["tenant", "queue"]
        for suffix, name, doc in _QUEUE_GAUGES:
            gauge = GaugeMetricFamily(f"callslo_queue_{suffix}", doc, labels=labels)
            for tile in tiles:
                if tile[name] is not None:
                    gauge.add_metric([tile["tenant"], tile["queue"]], float(tile[name]))
            yield gauge
        agents = GaugeMetricFamily("callslo_queue_agents", "Agents of the queue by state",
                                   labels=[*labels, "state"])
        alerts = GaugeMetricFamily("callslo_queue_alerts_firing", "Firing alerts of the queue",
                                   labels=labels)
        for tile in tiles:
            for state, count in (tile["agents"] or {}).items():
                agents.add_metric([tile["tenant"], tile["queue"], state], float(count))
            alerts.add_metric([tile["tenant"], tile["queue"]], float(len(tile["alerts"])))
        yield agents
        yield alerts

    def _engine_metrics(self) -> Iterator[Metric]:
        stats = self.stats
        counts, rejections = stats.ingest_counts()
        yield _counter("callslo_ingest_events", "Events stage 1 consumed", counts["consumed"])
        yield _counter("callslo_ingest_valid_events", "Events stage 1 accepted", counts["valid"])
        dead = CounterMetricFamily("callslo_ingest_dead_letters",
                                   "Events stage 1 sent to the dead-letter topic, by reason",
                                   labels=["reason"])
        for reason, count in sorted(rejections.items()):
            dead.add_metric([reason], float(count))
        yield dead
        yield _gauge("callslo_ingest_events_per_second",
                     "Events stage 1 consumed per second (over the last few seconds)",
                     stats.events_per_s)
        if stats.lag_messages is not None:
            yield _gauge("callslo_ingest_consumer_lag_messages",
                         "Messages on the events topic not yet consumed by this worker's stage 1",
                         stats.lag_messages)
        engine = stats.engine_counts
        yield _counter("callslo_engine_late_events",
                       "Late events stage 2 sent to the dead-letter topic", engine["late"])
        yield _counter("callslo_engine_interval_records", "Interval records published",
                       engine["records"])
        yield _counter("callslo_engine_realtime_records", "Realtime records published",
                       engine["realtime_records"])
        steps = CounterMetricFamily("callslo_engine_step_counts",
                                    "Stage 2's step counters by name", labels=["count"])
        for name, count in sorted(engine.items()):
            steps.add_metric([name], float(count))
        yield steps
        batch_s = stats.batch_seconds()
        if batch_s is not None:
            yield _gauge("callslo_engine_batch_seconds",
                         "Median time stage 2 spent applying one column batch, lately", batch_s)
        yield _gauge("callslo_wallboard_queues", "Queues the wallboard holds",
                     len(self.view.queues))
        yield _counter("callslo_wallboard_evicted_queues",
                       "Queues the wallboard forgot to stay within web.max_queues",
                       self.view.evicted)
        read = CounterMetricFamily("callslo_wallboard_records",
                                   "Records the wallboard read, by topic kind and outcome",
                                   labels=["name"])
        for name, count in sorted(self.reader_counts.items()):
            read.add_metric([name], float(count))
        yield read


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=float(value))


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=float(value))


def new_registry(collector: WallboardCollector) -> CollectorRegistry:
    """A registry of its own per app (the global one would mix apps in one process)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
