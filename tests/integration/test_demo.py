"""`callslo demo` end to end: it starts a broker, the worker and the simulator, prints the
wallboard's address and a summary with every queue, and when it ends (here by --duration-s,
then by SIGTERM) no process it started is left and its run directory is gone."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

QUEUES = ("acme/support", "acme/billing", "globex/sales", "globex/renewals", "initech/helpdesk")


def _descendants(pid: int) -> set[int]:
    """Every process whose ancestry leads to ``pid`` (children started a session of their
    own, so the process group would not find them)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def _start(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    out = tmp_path / "demo.out"
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    with open(out, "wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "demo", "--web-port", "0",
                                 "--refresh-s", "0.5", *args], stdout=sink,
                                stderr=subprocess.STDOUT, env=env)
    return proc, out


def _wait_for(out: Path, pattern: str, proc: subprocess.Popen, timeout_s: float) -> re.Match:
    deadline = time.monotonic() + timeout_s
    while True:
        found = re.search(pattern, out.read_text(errors="replace"))
        if found:
            return found
        assert proc.poll() is None or time.monotonic() < deadline, out.read_text()[-3000:]
        assert time.monotonic() < deadline, out.read_text()[-3000:]
        time.sleep(0.5)


def test_demo_runs_for_its_duration_and_leaves_nothing(tmp_path):
    proc, out = _start(tmp_path, "--duration-s", "45")
    url = _wait_for(out, r"wallboard (http://127\.0\.0\.1:\d+/)", proc, 240).group(1)
    run_dir = Path(_wait_for(out, r"run directory (\S+)", proc, 5).group(1))
    assert run_dir.is_dir() and run_dir.parent == tmp_path
    with urllib.request.urlopen(url, timeout=5) as page:
        assert b"callslo wallboard" in page.read()
    children = _descendants(proc.pid)
    assert len(children) >= 3, "broker, worker and simulator"
    proc.wait(timeout=240)
    text = out.read_text()
    assert proc.returncode == 0, text[-3000:]
    # The summary showed every queue with a service level.
    for queue in QUEUES:
        assert re.search(rf"^{re.escape(queue)} +\d+\.\d%", text, re.M), (queue, text[-3000:])
    assert "demo: stopped; run directory removed" in text
    assert not run_dir.exists()
    assert not _alive(children), f"left running: {_alive(children)}"


def test_demo_stops_everything_on_sigterm(tmp_path):
    proc, out = _start(tmp_path)
    _wait_for(out, r"wallboard http://", proc, 240)
    run_dir = Path(_wait_for(out, r"run directory (\S+)", proc, 5).group(1))
    children = _descendants(proc.pid)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=180)
    text = out.read_text()
    assert "demo: stopping" in text and "demo: Kafka stopped" in text, text[-3000:]
    assert not run_dir.exists()
    assert not _alive(children), f"left running: {_alive(children)}"
