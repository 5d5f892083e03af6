"""`callslo worker` as an operator runs it: a separate process on the real broker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from streams.columns import ColumnBatch
from streams.localkafka import free_port
from tests.integration.kafka_helpers import event_message, now_ms, produce, read_all, topic_exists

pytestmark = pytest.mark.timeout(240)


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP listener on ``port`` (from /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, _, state = line.split()[1:4]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


def test_worker_process_dead_letters_and_condenses(kafka_bootstrap, make_settings, tmp_path):
    settings = make_settings(kafka_bootstrap)
    web_port = free_port()
    config = tmp_path / "callslo.toml"
    t = settings.topics
    config.write_text(
        f'[topics]\nevents = "{t.events}"\ndlq = "{t.dlq}"\nbatches = "{t.batches}"\n'
        f'partitions = {t.partitions}\n'
        f'[ingest]\ngroup_id = "{settings.ingest.group_id}"\n'
        f'[worker]\napp_id = "{settings.worker.app_id}"\ndata_dir = "{tmp_path / "data"}"\n')
    env = {**os.environ, "CALLSLO_BOOTSTRAP": kafka_bootstrap, "CALLSLO_WEB_PORT": str(web_port)}
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker", "--config",
                                   str(config)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        ts = now_ms()
        good = [{"event_id": f"w{i}", "type": "call.queued", "ts_ms": ts, "tenant": "acme",
                 "queue": f"q{i % 4}", "call_id": f"c{i}"} for i in range(40)]
        bad = [(b"acme/q1", b"garbage"),
               (b"acme/q1", orjson.dumps({**good[0], "event_id": "neg", "type": "call.abandoned",
                                          "wait_ms": -1}))]
        # the worker creates the topics at start; produce once they exist
        deadline = time.monotonic() + 90
        while not all(asyncio.run(topic_exists(kafka_bootstrap, name))
                      for name in (t.events, t.dlq, t.batches)):
            assert worker.poll() is None, f"worker exited:\n{log_path.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "the worker did not create its topics"
            time.sleep(0.5)
        asyncio.run(produce(kafka_bootstrap, t.events, [event_message(e) for e in good] + bad))

        async def outputs():
            dlq = await read_all(kafka_bootstrap, t.dlq)
            batches = await read_all(kafka_bootstrap, t.batches)
            return dlq, batches

        deadline = time.monotonic() + 120
        while True:
            assert worker.poll() is None, f"worker exited:\n{log_path.read_text()[-3000:]}"
            dlq, batches = asyncio.run(outputs())
            ids = [e["event_id"] for r in batches for e in ColumnBatch.from_bytes(r.value).events()]
            if len(dlq) >= 2 and len(ids) >= len(good):
                break
            assert time.monotonic() < deadline, (
                f"worker produced {len(dlq)} dead letters and {len(ids)} events:\n"
                f"{log_path.read_text()[-3000:]}")
            time.sleep(1)
        assert sorted(dict(r.headers)["callslo.reason"] for r in dlq) == [
            b"negative_duration", b"not_json"]
        assert sorted(ids) == sorted(e["event_id"] for e in good)
        # Faust's web server is on loopback only, on the configured port.
        assert _listening_addresses(web_port) == {"127.0.0.1"}
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            code = worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
            raise AssertionError(f"worker ignored SIGTERM:\n{log_path.read_text()[-3000:]}")
    assert code == 0, log_path.read_text()[-3000:]
