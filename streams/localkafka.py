"""A real Apache Kafka broker on this host, for development, the demo and the tests.

The broker's jars come from Maven Central through ``dev/kafka/pom.xml`` (the Kafka version is
pinned there) and are copied once into ``<cache>/kafka-<version>/libs``; ``<cache>`` is
``$CALLSLO_CACHE_DIR`` or ``~/.cache/callslo``. Each broker runs as one KRaft node (broker and
controller combined) listening on 127.0.0.1 only, with its state in a run directory:

    <run dir>/server.properties   broker.log   broker.pid   data/

The default run directory is ``<cache>/brokers/<port>``, so a stopped broker keeps its topics
and starts again with them; ``fresh=True`` wipes it first. Only a broker this module started,
recognised by its pid file and command line, is ever stopped.

With a :class:`~streams.localkafka_security.BrokerSecurity` the client port asks for SCRAM
credentials, TLS or both (see that module and docs/security.md); without one it is PLAINTEXT.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from streams.errors import BrokerError, ToolMissingError
from streams.localkafka_security import BrokerSecurity, tls_dir

__all__ = [
    "Broker",
    "BrokerSecurity",
    "BrokerStatus",
    "cache_dir",
    "ensure_jars",
    "free_port",
    "kafka_version",
    "pom_path",
]

_LOG_TAIL_LINES = 40
_STARTED_LINE = "Kafka Server started"
_JVM_OPTS = ["-Xms256m", "-Xmx768m", "-XX:+UseG1GC", "-Djava.awt.headless=true"]


def pom_path() -> Path:
    """The Maven file that pins the broker version, at ``dev/kafka/pom.xml`` in the source tree."""
    path = Path(__file__).resolve().parents[1] / "dev" / "kafka" / "pom.xml"
    if not path.is_file():
        raise BrokerError(f"{path} is missing: the local broker needs callslo's source tree "
                          "(install with `pip install -e .` from a clone)")
    return path


def kafka_version() -> str:
    """The Kafka version pinned in the Maven file."""
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom_path().read_text())
    if not match:
        raise BrokerError(f"{pom_path()} does not define <kafka.version>")
    return match.group(1).strip()


def cache_dir() -> Path:
    """Where downloaded jars and default broker run directories live."""
    base = os.environ.get("CALLSLO_CACHE_DIR")
    if base:
        return Path(base).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "callslo"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_jars(progress=None) -> Path:
    """Download the pinned broker and its dependencies once; return the directory of jars.

    ``progress`` is called with short lines of text while Maven downloads (default: stderr).
    """
    say = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    version = kafka_version()
    libs = cache_dir() / f"kafka-{version}" / "libs"
    if (libs / ".complete").exists():
        return libs
    mvn = _which("mvn", "Maven (Debian: apt-get install maven)")
    libs.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="libs-", dir=libs.parent))
    say(f"callslo: fetching Apache Kafka {version} from Maven Central into {libs} (first run only)")
    command = [mvn, "-B", "-f", str(pom_path()), "dependency:copy-dependencies",
               f"-DoutputDirectory={staging}", "-DincludeScope=runtime"]
    output: list[str] = []
    downloaded = 0
    # The context closes Maven's output pipe (an open pipe left to the garbage collector
    # is a ResourceWarning, which the test suite treats as an error).
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line.rstrip())
            if line.startswith("Downloaded from"):
                downloaded += 1
                if downloaded % 10 == 0:
                    say(f"callslo: {downloaded} artifacts downloaded ...")
    if proc.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
        shutil.rmtree(staging, ignore_errors=True)
        tail = "\n".join(output[-_LOG_TAIL_LINES:])
        raise BrokerError(f"Maven could not fetch Apache Kafka {version} (exit {proc.returncode}):\n{tail}")
    (staging / ".complete").write_text(version)
    try:
        staging.rename(libs)
    except OSError:
        # Another process finished the same download first; theirs is as good as ours.
        shutil.rmtree(staging, ignore_errors=True)
        if not (libs / ".complete").exists():
            raise
    say(f"callslo: Apache Kafka {version} ready ({sum(1 for _ in libs.glob('*.jar'))} jars)")
    return libs


@dataclass(frozen=True)
class BrokerStatus:
    """What :meth:`Broker.status` reports."""

    running: bool
    pid: int | None
    port: int
    run_dir: Path

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


class Broker:
    """One local KRaft broker on ``127.0.0.1:port``, its files in ``run_dir``.

    ``security`` secures the client port; SCRAM users are created when the run directory is
    formatted (its first start, or ``fresh=True``), so changing them needs a fresh start.
    """

    def __init__(self, port: int = 9092, run_dir: str | os.PathLike[str] | None = None,
                 security: BrokerSecurity | None = None) -> None:
        self.port = port
        self.run_dir = Path(run_dir) if run_dir else cache_dir() / "brokers" / str(port)
        self.security = security or BrokerSecurity()
        # The process handle when this object started the broker, so stopping it reaps it.
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ca_path(self) -> Path:
        """The CA certificate that signed the TLS listener's certificate (with ``tls``)."""
        return tls_dir(self.run_dir) / "ca.pem"

    @property
    def log_path(self) -> Path:
        return self.run_dir / "broker.log"

    @property
    def pid_path(self) -> Path:
        return self.run_dir / "broker.pid"

    def start(self, *, fresh: bool = False, timeout_s: float = 90.0, progress=None) -> BrokerStatus:
        """Start the broker in the background and return once it accepts connections.

        A broker of ours already running on this port is left as it is.
        """
        current = self.status()
        if current.running:
            return current
        java = _which("java", "a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)")
        libs = ensure_jars(progress)
        if _port_in_use(self.port):
            raise BrokerError(f"port {self.port} on 127.0.0.1 is taken by another program; "
                              "choose another with --port")
        if fresh and self.run_dir.exists():
            shutil.rmtree(self.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.security.prepare(self.run_dir)
        props = self._write_properties()
        classpath = f"{libs}/*"
        data_dir = self.run_dir / "data"
        if not (data_dir / "meta.properties").exists():
            cluster_id = _kraft_cluster_id()
            fmt = subprocess.run(
                [java, *_JVM_OPTS, "-cp", classpath, "kafka.tools.StorageTool", "format",
                 "-t", cluster_id, "-c", str(props), *self.security.format_arguments()],
                capture_output=True, text=True)
            if fmt.returncode != 0:
                raise BrokerError(f"formatting KRaft storage in {data_dir} failed:\n"
                                  f"{_tail(fmt.stdout + fmt.stderr)}")
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                [java, *_JVM_OPTS, f"-Dcallslo.broker.dir={self.run_dir}", "-cp", classpath,
                 "kafka.Kafka", str(props)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        self._proc = proc
        self.pid_path.write_text(str(proc.pid))
        log_start = self.log_path.stat().st_size
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self._proc = None
                self.pid_path.unlink(missing_ok=True)
                raise BrokerError(f"the broker exited with code {proc.returncode} while starting; "
                                  f"log {self.log_path}:\n{self.log_tail()}")
            if _STARTED_LINE in _read_from(self.log_path, log_start) and _port_in_use(self.port):
                return BrokerStatus(True, proc.pid, self.port, self.run_dir)
            time.sleep(0.2)
        self._signal_and_wait(proc.pid, signal.SIGKILL, 10)
        self._reap()
        self.pid_path.unlink(missing_ok=True)
        raise BrokerError(f"the broker did not come up within {timeout_s:.0f} s; "
                          f"log {self.log_path}:\n{self.log_tail()}")

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop the broker this module started on this port; ``False`` if none was running."""
        pid = self._our_pid()
        if pid is None:
            self.pid_path.unlink(missing_ok=True)
            return False
        if not self._signal_and_wait(pid, signal.SIGTERM, timeout_s):
            self._signal_and_wait(pid, signal.SIGKILL, 10)
        self._reap()
        self.pid_path.unlink(missing_ok=True)
        return True

    def kill(self) -> bool:
        """SIGKILL the broker (fault injection): no clean shutdown, data stays as it was."""
        pid = self._our_pid()
        if pid is None:
            return False
        self._signal_and_wait(pid, signal.SIGKILL, 10)
        self._reap()
        self.pid_path.unlink(missing_ok=True)
        return True

    def _reap(self) -> None:
        if self._proc is not None:
            self._proc.wait(timeout=10)
            self._proc = None

    def status(self) -> BrokerStatus:
        pid = self._our_pid()
        return BrokerStatus(pid is not None, pid, self.port, self.run_dir)

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        try:
            return _tail(self.log_path.read_text(errors="replace"), lines)
        except FileNotFoundError:
            return "(no broker log yet)"

    def _our_pid(self) -> int | None:
        try:
            pid = int(self.pid_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        # The pid may have been reused by another program since; only ours carries our dir.
        marker = f"-Dcallslo.broker.dir={self.run_dir}".encode()
        return pid if marker in cmdline and b"kafka.Kafka" in cmdline else None

    @staticmethod
    def _signal_and_wait(pid: int, sig: int, timeout_s: float) -> bool:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                waited, _ = os.waitpid(pid, os.WNOHANG)
                if waited == pid:
                    return True
            except ChildProcessError:
                pass  # not our child (started by another callslo process): poll /proc instead
            if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
                return True
            time.sleep(0.1)
        return False

    def _write_properties(self) -> Path:
        props = self.run_dir / "server.properties"
        controller_port = None
        if props.exists():
            match = re.search(r"CONTROLLER://127\.0\.0\.1:(\d+)", props.read_text())
            if match and not _port_in_use(int(match.group(1))):
                controller_port = int(match.group(1))
        if controller_port is None:
            controller_port = free_port()
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.run_dir / "data"),
            "num.partitions": "1",
            # callslo creates its topics with the partition count it needs; a topic made
            # implicitly by a producer that came first would have the wrong count.
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "10",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # One node: no point waiting for more consumers before the first rebalance.
            "group.initial.rebalance.delay.ms": "0",
            # Large enough that oversized events reach callslo's validator (and its DLQ)
            # instead of being refused by the broker.
            "message.max.bytes": str(16 * 1024 * 1024),
        }
        if self.security.protocol != "PLAINTEXT":
            internal_port = free_port()
            while internal_port == controller_port:
                internal_port = free_port()
            settings.update(self.security.listener_properties(
                self.port, internal_port, controller_port, self.run_dir))
        props.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        return props


def _which(program: str, what: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise ToolMissingError(f"`{program}` is not on the PATH: the local Kafka broker needs {what}")
    return path


def _kraft_cluster_id() -> str:
    # KRaft cluster ids are 16 random bytes in URL-safe base64 without padding. One in 64
    # starts with "-", which the storage tool's argument parser takes for an option (and
    # refuses to format), so such ids are drawn again.
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _read_from(path: Path, offset: int) -> str:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def _tail(text: str, lines: int = _LOG_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])
