"""`callslo worker` in its own process for tests, and reading its final interval records."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import orjson

from streams.localkafka import free_port
from streams.replay import record_sort_key
from streams.settings import Settings
from tests.integration.kafka_helpers import read_all, topic_exists

#: The settings sections a test's worker gets from its :class:`Settings`, with
#: ``slo.fcr_window_s`` (the broker address, web port and data directory come from the
#: environment, per worker).
_CONFIG_SECTIONS = ("topics", "ingest", "worker", "engine")


def settings_toml(settings: Settings) -> str:
    """The TOML file that gives a worker process the test's topics, groups and engine rules."""
    lines = []
    for section in _CONFIG_SECTIONS:
        lines.append(f"[{section}]")
        for key, value in dataclasses.asdict(getattr(settings, section)).items():
            # JSON strings, integers and booleans are valid TOML values.
            lines.append(f"{key} = {json.dumps(value)}")
    # The first-contact-resolution window decides when FCR records are final.
    lines.append(f"[slo]\nfcr_window_s = {settings.slo.fcr_window_s}")
    return "\n".join(lines) + "\n"


class Worker:
    """`callslo worker` in its own process, as an operator runs it. Each worker has its own
    data directory and, at every start, a free web port, so several can share a host."""

    def __init__(self, settings: Settings, tmp_path: Path, bootstrap: str,
                 name: str = "w1") -> None:
        self.name = name
        self.config = tmp_path / f"callslo-{name}.toml"
        self.config.write_text(settings_toml(settings))
        self.env = {**os.environ, "CALLSLO_BOOTSTRAP": bootstrap,
                    "CALLSLO_DATA_DIR": str(tmp_path / f"data-{name}")}
        self.log_path = tmp_path / f"worker-{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        env = {**self.env, "CALLSLO_WEB_PORT": str(free_port())}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker", "--config", str(self.config)],
                env=env, stdout=log, stderr=subprocess.STDOUT)
        self.starts += 1

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the worker's log, after the first error in it (what a shutdown's
        own noise would otherwise push out of view)."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        first = min((i for i in (text.find("[ERROR]"), text.find("[CRITICAL]")) if i >= 0),
                    default=-1)
        head = "" if first < 0 else f"first error:\n{text[first:first + chars]}\n...\n"
        return f"--- {self.log_path} ---\n{head}{text[-chars:]}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        assert self.running, f"worker {self.name} exited:\n{self.log_tail()}"

    def kill(self) -> None:
        """SIGKILL: no shutdown of any kind, as when the host or the container dies."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> int:
        """SIGTERM and wait for a clean exit; its exit code."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"worker {self.name} ignored SIGTERM:\n{self.log_tail()}")

    def ensure_stopped(self) -> None:
        """For ``finally``: never leave a worker process behind, whatever happened."""
        if self.running:
            try:
                self.stop()
            except AssertionError:
                pass


def final_records(records: Iterable[Any]) -> dict[tuple[str, str, int], dict[str, Any]]:
    """One record per (tenant, queue, interval start); a re-published copy must be identical."""
    final: dict[tuple[str, str, int], dict[str, Any]] = {}
    for record in records:
        value = orjson.loads(record.value)
        key = record_sort_key(value)
        assert record.key == f"{value['tenant']}/{value['queue']}".encode()
        if key in final:
            assert final[key] == value, f"two different records for {key}"
        final[key] = value
    return final


def wait_for_records(bootstrap: str, topic: str, expected: int, check: Callable[[], None],
                     timeout_s: float = 180) -> dict[tuple[str, str, int], dict[str, Any]]:
    """The final records once there are at least ``expected``; ``check`` raises (with the
    workers' logs) when something it watches went wrong."""
    deadline = time.monotonic() + timeout_s
    while True:
        check()
        final = final_records(asyncio.run(read_all(bootstrap, topic)))
        if len(final) >= expected:
            return final
        if time.monotonic() > deadline:
            check()
            raise AssertionError(f"{len(final)} of {expected} interval records after "
                                 f"{timeout_s} s")
        time.sleep(1)


def wait_for_topics(bootstrap: str, settings: Settings, check: Callable[[], None],
                    timeout_s: float = 90) -> None:
    """Until the worker has created the topics it needs (so produced events find them)."""
    deadline = time.monotonic() + timeout_s
    t = settings.topics
    while not all(asyncio.run(topic_exists(bootstrap, name))
                  for name in (t.events, t.batches, t.intervals)):
        check()
        assert time.monotonic() < deadline, "the worker did not create its topics"
        time.sleep(0.5)
