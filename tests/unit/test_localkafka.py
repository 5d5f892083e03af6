"""Local broker launcher: the parts that need no broker (errors, files, ownership)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys

import pytest

from streams.errors import BrokerError, ToolMissingError
from streams.localkafka import Broker, cache_dir, free_port, kafka_version, pom_path


def test_version_comes_from_the_pom():
    assert kafka_version().startswith("4.")
    assert pom_path().name == "pom.xml"


def test_cache_dir_honours_the_override(monkeypatch, tmp_path):
    monkeypatch.setenv("CALLSLO_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    assert Broker(1234).run_dir == tmp_path / "c" / "brokers" / "1234"


def test_missing_java_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissingError, match="java"):
        Broker(free_port(), tmp_path / "run").start()


def test_missing_maven_is_a_clear_error_when_jars_are_not_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("CALLSLO_CACHE_DIR", str(tmp_path / "empty-cache"))
    only_java = tmp_path / "bin"
    only_java.mkdir()
    (only_java / "java").symlink_to(shutil.which("java"))
    monkeypatch.setenv("PATH", str(only_java))
    with pytest.raises(ToolMissingError, match="mvn"):
        Broker(free_port(), tmp_path / "run").start()


def test_a_port_taken_by_someone_else_is_refused(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(BrokerError, match=f"port {port}"):
            Broker(port, tmp_path / "run").start()


def test_stop_never_touches_a_process_that_is_not_our_broker(tmp_path):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        broker = Broker(free_port(), tmp_path)
        broker.pid_path.parent.mkdir(parents=True, exist_ok=True)
        broker.pid_path.write_text(str(other.pid))
        assert broker.status().running is False
        assert broker.stop() is False
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
