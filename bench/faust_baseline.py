"""Reference (c) of bench/pipeline.py: the plain Faust way, one windowed-table write per event.

A Faust agent reads the JSON events, and for every call outcome updates a per-queue tumbling
15-minute table (offered, answered within 20 s). It reports when it has seen every event.
Run by :func:`run` in its own process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import faust


def build(bootstrap: str, topic: str, expected: int, partitions: int, result: Path) -> faust.App:
    app = faust.App(f"baseline-{os.getpid()}", broker=f"kafka://{bootstrap}", store="memory://",
                    topic_partitions=partitions, broker_session_timeout=10,
                    broker_heartbeat_interval=3, web_enabled=False, autodiscover=False)
    events = app.topic(topic, key_type=bytes, value_type=bytes, value_serializer="raw",
                       key_serializer="raw", partitions=partitions)
    counts = app.Table("counts", default=int, partitions=partitions).tumbling(
        timedelta(minutes=15), expires=timedelta(hours=24))
    state = {"seen": 0, "first": 0.0}

    import orjson

    @app.agent(events)
    async def count(stream):
        async for key, value in stream.items():
            if not state["seen"]:
                state["first"] = time.perf_counter()
            event = orjson.loads(value)
            if event["type"] in ("call.answered", "call.abandoned"):
                name = f"{event['tenant']}/{event['queue']}"
                counts[name] += 1
            state["seen"] += 1
            if state["seen"] == expected:
                result.write_text(str(expected / (time.perf_counter() - state["first"])))

    return app


def run(bootstrap: str, topic: str, expected: int, workdir: Path, partitions: int,
        timeout_s: float = 3600) -> float:
    """Events per second of the baseline agent over ``expected`` events of ``topic``."""
    result = workdir / "baseline.result"
    result.unlink(missing_ok=True)
    log = workdir / "baseline.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "bench.faust_baseline", bootstrap, topic,
                                 str(expected), str(partitions), str(result)],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout_s
        while not result.exists():
            if proc.poll() is not None:
                raise RuntimeError(f"baseline exited:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("baseline did not finish in time")
            time.sleep(1)
        return float(result.read_text())
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    bootstrap_, topic_, expected_, partitions_, result_ = sys.argv[1:6]
    app_ = build(bootstrap_, topic_, int(expected_), int(partitions_), Path(result_))
    faust.Worker(app_, loglevel="warning", redirect_stdouts=False).execute_from_commandline()
