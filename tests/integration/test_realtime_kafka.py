"""Realtime records from the worker on the real broker: calls waiting now, rolling windows, and
agent states fanned out from the agents' partitions to their queues' partitions."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from tests.integration.kafka_helpers import event_message, now_ms, produce, read_all
from tests.integration.worker_process import Worker, wait_for_topics

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _call(kind: str, ts_ms: int, call_id: str, queue: str, **fields) -> dict:
    event = {"event_id": f"{queue}-{call_id}-{kind}", "type": kind, "ts_ms": ts_ms,
             "tenant": "acme", "queue": queue, "call_id": call_id, **fields}
    if kind == "call.answered":
        event["agent_id"] = "a1"
    return event


def _agent(ts_ms: int, agent_id: str, state: str, queues: list[str]) -> dict:
    return {"event_id": f"agent-{agent_id}-{ts_ms}", "type": "agent.state", "ts_ms": ts_ms,
            "tenant": "acme", "agent_id": agent_id, "state": state, "queues": queues}


def test_realtime_records_show_waiting_calls_windows_and_agents(kafka_bootstrap, make_settings,
                                                              tmp_path):
    settings = make_settings(kafka_bootstrap, engine={"realtime_interval_s": 0.5})
    t0 = now_ms() - 10 * 60_000
    events = [_agent(t0, "a1", "available", ["support", "billing"]),
              _agent(t0 + 1, "a2", "available", ["support"]),
              _agent(t0 + 2, "a3", "away", ["billing", "sales"])]
    # support: 20 answered calls over the last ten minutes, 15 of them within 20 s.
    for n in range(20):
        queued = t0 + n * 25_000
        wait_ms = 5_000 if n < 15 else 40_000
        events += [_call("call.queued", queued, f"s{n}", "support"),
                   _call("call.answered", queued + wait_ms, f"s{n}", "support", wait_ms=wait_ms)]
    # billing: two calls waiting now, queued 90 s and 30 s ago.
    events += [_call("call.queued", now_ms() - 90_000, "b1", "billing"),
               _call("call.queued", now_ms() - 30_000, "b2", "billing")]
    events += [_agent(t0 + 3, "a2", "on_call", ["support"])]

    worker = Worker(settings, tmp_path, kafka_bootstrap)
    worker.start()
    try:
        wait_for_topics(kafka_bootstrap, settings, worker.check_alive)
        asyncio.run(produce(kafka_bootstrap, settings.topics.events,
                            [event_message(e) for e in events]))
        deadline = time.monotonic() + 120
        while True:
            worker.check_alive()
            latest = {}
            for record in asyncio.run(read_all(kafka_bootstrap, settings.topics.realtime)):
                value = orjson.loads(record.value)
                assert record.key == f"{value['tenant']}/{value['queue']}".encode()
                latest[value["queue"]] = value
            if (latest.get("support", {}).get("w15m_answered") == 20
                    and latest.get("billing", {}).get("agents", {}).get("away") == 1
                    and latest.get("sales", {}).get("staffed") == 1):
                break
            assert time.monotonic() < deadline, f"{latest}\n{worker.log_tail()}"
            time.sleep(1)
        support, billing = latest["support"], latest["billing"]
        assert support["w15m_service_level"] == pytest.approx(15 / 20)
        assert support["w60m_offered"] == 20
        assert support["w15m_wait_p90_s"] == pytest.approx(40.0, rel=0.01)
        assert support["calls_waiting"] == 0
        assert support["agents"] == {"available": 1, "on_call": 1, "wrapup": 0, "away": 0}
        assert billing["calls_waiting"] == 2
        # The oldest call has waited at least the 90 s since it was queued (the clock is the
        # wall clock stage 1's heartbeats carry once the partition is quiet).
        assert billing["oldest_wait_s"] >= 89
        assert billing["agents"] == {"available": 1, "on_call": 0, "wrapup": 0, "away": 1}
        assert billing["emitted_at_ms"] >= billing["as_of_ms"] - 1000
    finally:
        code = worker.stop()
    assert code == 0, worker.log_tail()
