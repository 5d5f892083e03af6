"""Fixtures shared by every test: settings factories and the session's real Kafka broker."""

from __future__ import annotations

import os
import uuid
from typing import Any, Callable

import pytest

from streams.errors import CallsloError
from streams.settings import Settings


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory):
    """``host:port`` of a real Apache Kafka broker: ``$CALLSLO_BOOTSTRAP`` when set, otherwise
    one started here on a free loopback port for the whole session (and stopped after it).
    A broker that does not come up fails the tests that need it, with its log tail."""
    given = os.environ.get("CALLSLO_BOOTSTRAP")
    if given:
        yield given
        return
    from streams.localkafka import Broker, free_port

    broker = Broker(free_port(), tmp_path_factory.mktemp("kafka"))
    try:
        broker.start(fresh=True)
    except CallsloError as exc:
        pytest.fail(f"the local Kafka broker did not start: {exc}", pytrace=False)
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture
def make_settings(tmp_path) -> Callable[..., Settings]:
    """Settings with per-test topic names (so tests sharing a broker never see each other's
    data) and any section overrides: ``make_settings(ingest={"batch_max_ms": 50})``."""

    def make(bootstrap: str = "127.0.0.1:9", **sections: dict[str, Any]) -> Settings:
        tag = uuid.uuid4().hex[:8]
        table: dict[str, dict[str, Any]] = {
            "kafka": {"bootstrap": bootstrap},
            "topics": {"events": f"test-{tag}.events", "dlq": f"test-{tag}.dlq",
                       "batches": f"test-{tag}.batches", "intervals": f"test-{tag}.intervals",
                       "realtime": f"test-{tag}.realtime",
                       "budget": f"test-{tag}.budget", "contacts": f"test-{tag}.contacts",
                       "fcr": f"test-{tag}.fcr",
                       "alerts": f"test-{tag}.alerts", "staffing": f"test-{tag}.staffing",
                       "partitions": 3},
            "ingest": {"group_id": f"test-{tag}-ingest"},
            "worker": {"app_id": f"test-{tag}", "data_dir": str(tmp_path / "worker")},
        }
        for section, values in sections.items():
            table.setdefault(section, {}).update(values)
        return Settings.from_mapping(table, env={})

    return make
