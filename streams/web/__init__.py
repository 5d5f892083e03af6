"""The worker's wallboard, JSON API, live updates and Prometheus metrics (docs/wallboard.md).

:func:`register_web` wires them into a Faust app: the in-memory view (:mod:`.view`) fed by
a whole-topic reader (:mod:`.reader`), the routes (:mod:`.api`) and the metrics (:mod:`.metrics`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

import faust
import mode

from streams.settings import Settings
from streams.web.api import check_exposure, register_views
from streams.web.metrics import WallboardCollector, WorkerStats, new_registry
from streams.web.reader import ViewReader
from streams.web.view import WallboardView

__all__ = ["register_web", "WallboardView"]

_REFRESH_S = 2.0


def register_web(app: faust.App, settings: Settings, engine: dict[str, Any] | None = None,
                 ingest_service: type | None = None) -> dict[str, Any]:
    """Serve the wallboard, API and metrics from ``app``'s web server.

    ``engine`` is what :func:`streams.agents.engine.register_engine` returned (its ``counts``
    feed the engine metrics); ``ingest_service`` is the app's stage-1 service class, whose
    running instance holds stage 1's counters. Raises ConfigError when the web host would
    expose the figures to the network without a token (see :func:`.api.check_exposure`)."""
    check_exposure(settings.web)
    # Faust's own /router and /table pages would bypass the token and show raw table bytes.
    app.conf.web_router_enabled = False
    app.conf.web_tables_enabled = False
    view = WallboardView(settings.web.max_queues)
    stats = WorkerStats((engine or {}).get("counts", Counter()),
                        ingest=_ingest_stage(app, ingest_service),
                        batch_seconds=_batch_seconds(app))
    closing: list[bool] = []

    class WallboardService(mode.Service):
        """Reads the wallboard's topics and refreshes the metrics that need awaiting."""

        reader: ViewReader

        def __post_init__(self) -> None:
            self.reader = ViewReader(settings, view, loop=self.loop, beacon=self.beacon)
            collector.reader_counts = self.reader.counts

        async def on_start(self) -> None:
            await self.add_runtime_dependency(self.reader)

        async def on_stop(self) -> None:
            closing.append(True)
            view.wake()

        @mode.Service.timer(_REFRESH_S)
        async def _refresh(self) -> None:
            await stats.refresh()

    collector = WallboardCollector(view, stats)
    registry = new_registry(collector)

    @app.on_before_shutdown.connect
    async def _close_streams(sender: Any, **kwargs: Any) -> None:
        # Open event streams would hold the web server's shutdown for a minute.
        closing.append(True)
        view.wake()

    register_views(app, settings.web, view, registry, lambda: bool(closing))
    app.service(WallboardService)
    return {"view": view, "stats": stats, "registry": registry}


def _ingest_stage(app: faust.App, service_class: type | None) -> Callable[[], Any]:
    def find() -> Any:
        # Faust keeps the instances of app.service classes once the app has started.
        for service in getattr(app, "_extra_service_instances", None) or ():
            if service_class is not None and isinstance(service, service_class):
                return getattr(service, "stage", None)
        return None
    return find


def _batch_seconds(app: faust.App) -> Callable[[], float | None]:
    def median() -> float | None:
        # Faust's monitor times each event an agent handles; stage 2's events are batches.
        monitor = app.monitor
        return float(monitor.events_runtime_avg) if monitor.events_runtime else None
    return median
