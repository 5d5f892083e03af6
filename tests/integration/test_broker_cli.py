"""`callslo kafka start|status|stop` as a developer runs it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from streams.localkafka import free_port

pytestmark = pytest.mark.timeout(240)


def _callslo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], capture_output=True,
                          text=True, timeout=180)


def test_start_status_stop_restart_keeps_topics(tmp_path, kafka_bootstrap):
    # kafka_bootstrap: the session broker must stay untouched by this second one.
    port = free_port()
    where = ["--port", str(port), "--dir", str(tmp_path / "b")]
    started = _callslo("kafka", "start", *where, "--fresh")
    assert started.returncode == 0, started.stderr
    assert f"127.0.0.1:{port}" in started.stdout
    try:
        assert _callslo("kafka", "status", *where).returncode == 0
        created = _callslo("topics", "create", config_arg := f"--config={tmp_path / 'c.toml'}")
        assert created.returncode == 2  # no such config file: a clear error, not a traceback
        assert "does not exist" in created.stderr
        (tmp_path / "c.toml").write_text(f'[kafka]\nbootstrap = "127.0.0.1:{port}"\n')
        created = _callslo("topics", "create", config_arg)
        assert created.returncode == 0, created.stderr
        assert "callcenter.events.v1" in created.stdout.split("created:")[1].splitlines()[0]
        stopped = _callslo("kafka", "stop", *where)
        assert stopped.returncode == 0 and "stopped" in stopped.stdout
        assert _callslo("kafka", "status", *where).returncode == 3
        # started again on the same directory, the broker still has the topics
        assert _callslo("kafka", "start", *where).returncode == 0
        again = _callslo("topics", "create", config_arg)
        assert again.returncode == 0 and "none (all present)" in again.stdout, again.stdout
    finally:
        _callslo("kafka", "stop", *where)
    assert _callslo("kafka", "status", *where).returncode == 3
    assert (tmp_path / "b" / "broker.log").exists()
