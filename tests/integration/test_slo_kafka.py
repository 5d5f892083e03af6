"""SLO evaluation in the worker on the real broker: events in, alerts and staffing records out.

A queue with a call waiting longer than the limit fires ``oldest_wait``; answering the call
resolves it. The interval before gets a staffing record with its arrivals, AHT and Erlang
requirement, and the next interval a forecast; the error budget of the queue is published."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from kernels.erlang import required_agents
from tests.integration.kafka_helpers import event_message, now_ms, produce, read_all
from tests.integration.worker_process import Worker, wait_for_topics

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

I = 900_000


def _call(kind: str, ts_ms: int, call_id: str, **fields) -> dict:
    event = {"event_id": f"{call_id}-{kind}", "type": kind, "ts_ms": ts_ms, "tenant": "acme",
             "queue": "support", "call_id": call_id, **fields}
    if kind in ("call.answered", "call.ended"):
        event["agent_id"] = "a1"
    return event


def _config(settings) -> str:
    t = settings.topics
    return (f'[topics]\nevents = "{t.events}"\ndlq = "{t.dlq}"\nbatches = "{t.batches}"\n'
            f'intervals = "{t.intervals}"\nrealtime = "{t.realtime}"\nalerts = "{t.alerts}"\n'
            f'staffing = "{t.staffing}"\nbudget = "{t.budget}"\ncontacts = "{t.contacts}"\n'
            f'fcr = "{t.fcr}"\npartitions = {t.partitions}\n'
            f'[ingest]\ngroup_id = "{settings.ingest.group_id}"\n'
            f'[worker]\napp_id = "{settings.worker.app_id}"\n'
            '[engine]\nrealtime_interval_s = 0.5\n'
            '[slo.alerts]\noldest_wait_s = 60.0\nhold_s = 0.0\n')


def _values(bootstrap: str, topic: str) -> list[dict]:
    out = []
    for record in asyncio.run(read_all(bootstrap, topic)):
        value = orjson.loads(record.value)
        assert record.key == f"{value['tenant']}/{value['queue']}".encode()
        out.append(value)
    return out


def _wait(worker: Worker, what: str, check, timeout_s: float = 150.0):
    deadline = time.monotonic() + timeout_s
    while True:
        worker.check_alive()
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"no {what}\n{worker.log_tail()}"
        time.sleep(1)


def test_events_to_alerts_and_staffing_records(kafka_bootstrap, make_settings, tmp_path):
    settings = make_settings(kafka_bootstrap)
    now = now_ms()
    # The interval that ended at least 4 minutes ago: closed once the worker runs.
    start = (now - 240_000) // I * I - I
    events = [{"event_id": "a1-on", "type": "agent.state", "ts_ms": start, "tenant": "acme",
               "agent_id": "a1", "state": "available", "queues": ["support"]}]
    for n in range(20):
        queued = start + 10_000 + n * 40_000
        events += [_call("call.queued", queued, f"c{n}"),
                   _call("call.answered", queued + 5_000, f"c{n}", wait_ms=5_000),
                   _call("call.ended", queued + 35_000, f"c{n}", talk_ms=30_000)]
    events.append(_call("call.queued", now - 90_000, "long"))

    worker = Worker(settings, tmp_path, kafka_bootstrap)
    worker.config.write_text(_config(settings))
    worker.start()
    try:
        wait_for_topics(kafka_bootstrap, settings, worker.check_alive)
        asyncio.run(produce(kafka_bootstrap, settings.topics.events,
                            [event_message(e) for e in events]))

        fired = _wait(worker, "oldest_wait alert", lambda: [
            a for a in _values(kafka_bootstrap, settings.topics.alerts)
            if a["kind"] == "oldest_wait" and a["state"] == "firing"])[0]
        assert fired["tenant"] == "acme" and fired["queue"] == "support"
        assert fired["value"] >= 60 and fired["threshold"] == 60.0
        assert fired["severity"] == "page" and fired["resolved_ms"] is None

        asyncio.run(produce(kafka_bootstrap, settings.topics.events, [event_message(
            _call("call.answered", now_ms(), "long", wait_ms=now_ms() - (now - 90_000)))]))
        resolved = _wait(worker, "resolved oldest_wait alert", lambda: [
            a for a in _values(kafka_bootstrap, settings.topics.alerts)
            if a["id"] == fired["id"] and a["state"] == "resolved"])[0]
        assert resolved["started_ms"] == fired["started_ms"]
        assert resolved["resolved_ms"] > fired["started_ms"]

        staffing = _wait(worker, "staffing records", lambda: [
            s for s in _values(kafka_bootstrap, settings.topics.staffing)
            if s["interval_start_ms"] in (start, start + I)])
        closed = [s for s in staffing if s["kind"] == "closed"][0]
        assert closed["interval_start_ms"] == start
        assert closed["arrivals"] == 20 and closed["aht_s"] == pytest.approx(30.0)
        assert closed["required_erlang_c"] == required_agents(20, 900, 30.0, 20.0, 0.8).row()["agents"]
        assert closed["required_erlang_c"] >= 1
        assert closed["quality"]["interval"]["transfer_rate"]["value"] == 0.0
        if closed["staffed"] is not None:  # one agent logged in, for the part snapshots covered
            assert closed["staffed"] == pytest.approx(1.0)
            assert 0 < closed["staffed_coverage"] <= 1
        following = [s for s in staffing if s["kind"] == "next"][0]
        assert following["interval_start_ms"] == start + I
        assert following["forecast_method"] == "ewma" and following["arrivals"] == pytest.approx(20.0)

        [budget] = [b for b in _values(kafka_bootstrap, settings.topics.budget)
                    if b["at_ms"] == start + I]
        assert budget["objective"] == "service_level" and budget["total"] == 20
        assert budget["bad"] == 0 and budget["remaining"] == 1.0
    finally:
        code = worker.stop()
    assert code == 0, worker.log_tail()
