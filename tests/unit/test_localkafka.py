"""Local broker launcher: the parts that need no broker (errors, files, ownership)."""

from __future__ import annotations

import gc
import shutil
import socket
import subprocess
import sys

import pytest

from streams.errors import BrokerError, ToolMissingError
from streams.localkafka import Broker, cache_dir, ensure_jars, free_port, kafka_version, pom_path


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


def _fake_maven(bin_dir, exit_code: int, jar: str | None):
    """An ``mvn`` that prints Maven-like download lines and copies ``jar`` (if any) into the
    ``-DoutputDirectory`` it is given."""
    bin_dir.mkdir()
    script = bin_dir / "mvn"
    make_jar = f'touch "$out/{jar}"' if jar else ":"
    script.write_text(
        "#!/bin/sh\n"
        'for arg in "$@"; do case "$arg" in -DoutputDirectory=*) out="${arg#*=}";; esac; done\n'
        'i=0; while [ $i -lt 25 ]; do echo "Downloaded from central: x$i.jar"; i=$((i+1)); done\n'
        f"{make_jar}\nexit {exit_code}\n")
    script.chmod(0o755)
    return bin_dir


def test_first_run_download_reports_progress_and_closes_mavens_output(monkeypatch, tmp_path):
    # The suite turns warnings into errors: an unclosed pipe to Maven once failed the first
    # test of a fresh machine (the only run that downloads) with a ResourceWarning.
    monkeypatch.setenv("CALLSLO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", f"{_fake_maven(tmp_path / 'bin', 0, 'kafka_2.13-4.1.1.jar')}:/usr/bin:/bin")
    lines: list[str] = []
    libs = ensure_jars(lines.append)
    gc.collect()
    assert (libs / "kafka_2.13-4.1.1.jar").exists() and (libs / ".complete").exists()
    assert any("20 artifacts downloaded" in line for line in lines)
    assert lines[-1].endswith("ready (1 jars)")
    assert ensure_jars(lines.append) == libs  # cached: no second download
    assert sum("fetching" in line for line in lines) == 1


def test_a_failed_download_names_maven_and_leaves_no_partial_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("CALLSLO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", f"{_fake_maven(tmp_path / 'bin', 1, None)}:/usr/bin:/bin")
    with pytest.raises(BrokerError, match=r"Maven could not fetch Apache Kafka .*exit 1"):
        ensure_jars(lambda line: None)
    gc.collect()
    assert not any((tmp_path / "cache").glob("kafka-*/libs"))
    assert not any((tmp_path / "cache").glob("kafka-*/libs-*"))


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
