"""Checks of the deployment files (Dockerfile, .dockerignore, docker-compose.yml) against the code.

No Docker engine is needed: the files are parsed and compared with what the package really
accepts (the CLI parser, the settings loader, the Kafka version pinned for development).
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.specifiers import SpecifierSet

from streams import cli
from streams.errors import ConfigError
from streams.localkafka import kafka_version
from streams.settings import _ENV_OVERRIDES, Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE_PATH = REPO / "docker-compose.yml"
DOCKERFILE_PATH = REPO / "Dockerfile"
DOCKERIGNORE_PATH = REPO / ".dockerignore"
LOOPBACK = "127.0.0.1"


# ---------------------------------------------------------------------------- parsing helpers

def _load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_PATH.read_text(encoding="utf-8"))


def _env(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as strings, from either the mapping or the list form."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, None) for item in raw)
    return {key: "" if value is None else str(value) for key, value in raw.items()}


def _host_ip(port_entry: str | int | dict[str, Any]) -> str | None:
    """The host address a compose `ports` entry binds, or None when it binds every interface."""
    if isinstance(port_entry, dict):
        return port_entry.get("host_ip")
    parts = str(port_entry).rsplit("/", 1)[0].split(":")
    # HOST_IP:HOST_PORT:CONTAINER_PORT (HOST_PORT may be empty); IPv6 hosts come bracketed.
    if len(parts) >= 3:
        return ":".join(parts[:-2]).strip("[]")
    return None


def _split_port(port_entry: str | int | dict[str, Any]) -> tuple[str, str]:
    """(host port, container port) of a `ports` entry; the host port is "" when ephemeral."""
    if isinstance(port_entry, dict):
        return str(port_entry.get("published", "")), str(port_entry["target"])
    parts = str(port_entry).rsplit("/", 1)[0].split(":")
    if len(parts) == 1:
        return "", parts[0]
    return parts[-2], parts[-1]


def _listeners(value: str) -> dict[str, tuple[str, int]]:
    """``NAME://host:port,...`` as {NAME: (host, port)}."""
    result = {}
    for item in value.split(","):
        match = re.fullmatch(r"([A-Z_]+)://([^:]*):(\d+)", item.strip())
        assert match, f"listener {item!r} is not NAME://host:port"
        result[match.group(1)] = (match.group(2), int(match.group(3)))
    return result


def _dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE_PATH.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def _args(arguments: str) -> list[str]:
    """Arguments of an instruction in exec (JSON) or shell form."""
    if arguments.startswith("["):
        return yaml.safe_load(arguments)  # a JSON array is valid YAML
    return shlex.split(arguments)


def _dockerfile_env() -> dict[str, str]:
    env = {}
    for keyword, arguments in _dockerfile():
        if keyword == "ENV":
            words = shlex.split(arguments)
            if "=" not in words[0]:  # legacy form: ENV KEY VALUE
                env[words[0]] = " ".join(words[1:])
            else:
                env.update(word.split("=", 1) for word in words)
    return env


def _dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps ``path`` (repository-relative) out of the build context."""
    excluded = False
    parts = Path(path).parts
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for pattern in patterns:
        negated = pattern.startswith("!")
        clean = pattern.lstrip("!").strip().lstrip("/").removeprefix("./").rstrip("/")
        regex = re.escape(clean).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        regex = re.sub(r"\\\[([^\]]*)\\\]", r"[\1]", regex)
        # A pattern that matches a directory excludes everything under it.
        if any(re.fullmatch(regex, prefix) for prefix in prefixes):
            excluded = not negated
    return excluded


def _dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE_PATH.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def _subcommands() -> set[str]:
    parser = cli.build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(actions) == 1, "the CLI should have exactly one set of subcommands"
    return set(actions[0].choices)


def _parse(command: list[str]) -> argparse.Namespace:
    try:
        return cli.build_parser().parse_args(command)
    except SystemExit as exc:
        pytest.fail(f"`callslo {' '.join(command)}` is refused by the CLI (exit {exc.code})")


# ---------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


@pytest.fixture(scope="module")
def kafka_env(services: dict[str, Any]) -> dict[str, str]:
    return _env(services["kafka"])


@pytest.fixture(scope="module")
def callslo_services(services: dict[str, Any]) -> dict[str, Any]:
    """The services that run the callslo image (built from this repository)."""
    return {name: s for name, s in services.items() if "build" in s}


# ---------------------------------------------------------------------------- helper self-checks

@pytest.mark.parametrize(("entry", "host_ip", "host_port", "container_port"), [
    ("6066", None, "", "6066"),
    ("9092:9092", None, "9092", "9092"),
    ("0.0.0.0:9092:9092", "0.0.0.0", "9092", "9092"),
    ("127.0.0.1::6066", LOOPBACK, "", "6066"),
    ("127.0.0.1:29092:29092/tcp", LOOPBACK, "29092", "29092"),
    ("[::1]:8080:80", "::1", "8080", "80"),
    ({"target": 6066, "published": 7000}, None, "7000", "6066"),
    ({"target": 6066, "host_ip": LOOPBACK}, LOOPBACK, "", "6066"),
])
def test_port_entry_parsing(entry: Any, host_ip: str | None, host_port: str,
                            container_port: str) -> None:
    assert _host_ip(entry) == host_ip
    assert _split_port(entry) == (host_port, container_port)


@pytest.mark.parametrize(("path", "patterns", "ignored"), [
    (".venv", [".venv"], True),
    ("streams/cli.py", ["streams"], True),
    ("streams/__pycache__/x.pyc", ["**/__pycache__"], True),
    ("streams/cli.py", ["**/__pycache__", "*.egg-info"], False),
    ("README.md", ["*.md", "!README.md"], False),
    ("kernels", ["kernel"], False),
])
def test_dockerignore_matching(path: str, patterns: list[str], ignored: bool) -> None:
    assert _dockerignored(path, patterns) is ignored


# ---------------------------------------------------------------------------- docker-compose.yml

def test_compose_has_kafka_and_worker(services: dict[str, Any]) -> None:
    assert {"kafka", "worker"} <= set(services)


def test_kafka_image_is_the_dev_broker_version(services: dict[str, Any]) -> None:
    assert services["kafka"]["image"] == f"apache/kafka:{kafka_version()}", (
        "the compose broker and dev/kafka/pom.xml (<kafka.version>) must pin the same Kafka")


def test_kafka_runs_as_single_kraft_node(kafka_env: dict[str, str]) -> None:
    assert set(kafka_env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    node_id = int(kafka_env["KAFKA_NODE_ID"])
    voters = {}
    for voter in kafka_env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(","):
        match = re.fullmatch(r"(\d+)@([^:]+):(\d+)", voter.strip())
        assert match, f"quorum voter {voter!r} is not ID@host:port"
        voters[int(match.group(1))] = int(match.group(3))
    assert node_id in voters, "the node must vote in its own controller quorum"

    listeners = _listeners(kafka_env["KAFKA_LISTENERS"])
    controller_names = kafka_env["KAFKA_CONTROLLER_LISTENER_NAMES"].split(",")
    assert all(name in listeners for name in controller_names)
    assert voters[node_id] == listeners[controller_names[0]][1], (
        "the quorum voter port must be the controller listener's port")
    protocols = dict(item.split(":") for item in
                     kafka_env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(listeners) <= set(protocols), "every listener needs a security protocol"
    assert kafka_env["KAFKA_INTER_BROKER_LISTENER_NAME"] in listeners
    assert kafka_env["KAFKA_INTER_BROKER_LISTENER_NAME"] not in controller_names


def test_kafka_broker_settings(kafka_env: dict[str, str]) -> None:
    for key in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"):
        assert kafka_env[key] == "1", f"{key}: a single node cannot hold more replicas"
    assert kafka_env["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == "0"
    # Same limit as the dev broker, so oversized events reach the validator and its DLQ.
    assert int(kafka_env["KAFKA_MESSAGE_MAX_BYTES"]) == 16 * 1024 * 1024
    assert int(kafka_env["KAFKA_MESSAGE_MAX_BYTES"]) > Settings().ingest.max_message_bytes


def test_kafka_advertises_what_it_listens_on(services: dict[str, Any],
                                             kafka_env: dict[str, str]) -> None:
    listeners = _listeners(kafka_env["KAFKA_LISTENERS"])
    advertised = _listeners(kafka_env["KAFKA_ADVERTISED_LISTENERS"])
    for name, (_, port) in advertised.items():
        assert name in listeners and listeners[name][1] == port, (
            f"advertised listener {name} has no listener on port {port}")
    published = {_split_port(p) for p in services["kafka"].get("ports", [])}
    for name, (host, port) in advertised.items():
        if host == "kafka":
            continue  # the compose network reaches it by service name
        assert host == LOOPBACK, f"listener {name} is advertised as {host}, not the host loopback"
        assert (str(port), str(port)) in published, (
            f"listener {name} advertises 127.0.0.1:{port}, which is not published as {port}:{port}")


def test_kafka_has_healthcheck_and_data_volume(compose: dict[str, Any],
                                               services: dict[str, Any],
                                               kafka_env: dict[str, str]) -> None:
    test = services["kafka"]["healthcheck"]["test"]
    assert test[0] in ("CMD", "CMD-SHELL") and len(test) > 1
    named = {v.split(":", 1)[0]: v.split(":", 2)[1] for v in services["kafka"]["volumes"]}
    log_dir = kafka_env["KAFKA_LOG_DIRS"]
    assert log_dir in named.values(), "the broker's log.dirs must be on a volume"
    volume = next(name for name, target in named.items() if target == log_dir)
    assert volume in (compose.get("volumes") or {}), f"{volume} is not a named volume"


def test_no_port_is_published_beyond_loopback(services: dict[str, Any]) -> None:
    for name, service in services.items():
        assert service.get("network_mode") != "host", f"{name} shares the host's network"
        for entry in service.get("ports", []):
            assert _host_ip(entry) == LOOPBACK, f"{name} publishes {entry!r} beyond 127.0.0.1"


def test_callslo_services_build_this_repository(callslo_services: dict[str, Any]) -> None:
    assert "worker" in callslo_services
    for name, service in callslo_services.items():
        build = service["build"]
        if isinstance(build, str):
            build = {"context": build}
        context = (COMPOSE_PATH.parent / build.get("context", ".")).resolve()
        assert context == REPO, f"{name} builds from {context}, not the repository"
        dockerfile = (context / build.get("dockerfile", "Dockerfile")).resolve()
        assert dockerfile == DOCKERFILE_PATH and dockerfile.is_file()
        assert "entrypoint" not in service, f"{name} must keep the image's `callslo` entrypoint"


def test_worker_can_be_scaled(services: dict[str, Any]) -> None:
    worker = services["worker"]
    assert "container_name" not in worker, "a fixed name stops `--scale worker=N`"
    for entry in worker.get("ports", []):
        host_port, _ = _split_port(entry)
        assert host_port == "", f"fixed host port in {entry!r}: replicas would collide"
    assert worker.get("restart") == "unless-stopped"


def test_worker_starts_after_kafka_is_healthy(services: dict[str, Any]) -> None:
    depends = services["worker"]["depends_on"]
    assert isinstance(depends, dict), "the list form of depends_on does not wait for health"
    assert depends["kafka"]["condition"] == "service_healthy"
    assert "test" in services["kafka"]["healthcheck"]


def test_worker_command_selects_the_worker(services: dict[str, Any]) -> None:
    args = _parse(services["worker"]["command"])
    assert args.func is cli._cmd_worker


def test_profiled_commands_exist_in_the_cli(callslo_services: dict[str, Any]) -> None:
    subcommands = _subcommands()
    pending = []
    for name, service in callslo_services.items():
        command = service.get("command")
        if command is None:
            continue  # the image's CMD, checked with the Dockerfile
        if command[0] in subcommands:
            _parse(command)
        else:
            # A command the CLI does not have yet may only run when asked for by profile,
            # never in a plain `docker compose up`.
            assert service.get("profiles"), (
                f"{name} runs `callslo {command[0]}`, which the CLI lacks, without a profile")
            pending.append(f"{name}: callslo {command[0]}")
    if pending:
        pytest.skip(f"not in the CLI yet, kept behind profiles: {', '.join(pending)}")


def test_simulator_is_opt_in_and_feeds_the_events_topic(services: dict[str, Any]) -> None:
    simulator = services.get("simulator")
    if simulator is None:
        pytest.skip("docker-compose.yml has no simulator service")
    assert simulator.get("profiles"), "synthetic load must never start with a plain `up`"
    command = simulator["command"]
    topic = command[command.index("--topic") + 1]
    assert topic == Settings.load(env=_env(simulator)).topics.events


def test_callslo_env_is_known_to_the_settings(callslo_services: dict[str, Any]) -> None:
    for name, service in callslo_services.items():
        env = _env(service)
        for var, value in env.items():
            if var.startswith("CALLSLO_"):
                assert var in _ENV_OVERRIDES, f"{name} sets {var}, which streams.settings ignores"
                # An empty value is ignored by the settings: the default would apply silently.
                assert value, f"{name} sets {var} to an empty value"
        try:
            Settings.load(env={**_dockerfile_env(), **env})
        except ConfigError as exc:
            pytest.fail(f"{name}: {exc}")


def test_worker_reaches_kafka_and_serves_its_port(services: dict[str, Any],
                                                  kafka_env: dict[str, str]) -> None:
    settings = Settings.load(env={**_dockerfile_env(), **_env(services["worker"])})
    assert settings.kafka.bootstrap == "kafka:9092"
    advertised = _listeners(kafka_env["KAFKA_ADVERTISED_LISTENERS"])
    internal = {f"{host}:{port}" for host, port in advertised.values() if host == "kafka"}
    assert settings.kafka.bootstrap in internal, (
        f"workers bootstrap from {settings.kafka.bootstrap}; kafka advertises {internal}")
    # Inside the container the web server must not be bound to loopback only, or the
    # published port would lead nowhere.
    assert settings.web.host == "0.0.0.0"
    targets = {_split_port(entry)[1] for entry in services["worker"].get("ports", [])}
    assert targets <= {str(settings.web.port)}, (
        f"worker publishes {targets}, but its web server listens on {settings.web.port}")


# ---------------------------------------------------------------------------- Dockerfile

def test_dockerfile_base_matches_requires_python() -> None:
    base = next(args for keyword, args in _dockerfile() if keyword == "FROM")
    match = re.fullmatch(r"python:(\d+\.\d+)-slim(?:\S*)?", base.split()[0])
    assert match, f"base image {base!r} is not python:X.Y-slim"
    requires = re.search(r'requires-python\s*=\s*"([^"]+)"',
                         (REPO / "pyproject.toml").read_text(encoding="utf-8")).group(1)
    assert match.group(1) in SpecifierSet(requires), f"python {match.group(1)} vs {requires}"


def test_dockerfile_entrypoint_and_default_command() -> None:
    instructions = dict(_dockerfile())  # the last of each instruction wins, as in Docker
    assert _args(instructions["ENTRYPOINT"]) == ["callslo"]
    assert instructions["ENTRYPOINT"].startswith("["), "shell form would swallow SIGTERM"
    scripts = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^callslo\s*=\s*"streams\.cli:main"', scripts, re.MULTILINE)
    assert _parse(_args(instructions["CMD"])).func is cli._cmd_worker


def test_dockerfile_runs_as_non_root() -> None:
    users = [args for keyword, args in _dockerfile() if keyword == "USER"]
    assert users, "no USER instruction: the worker would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"the final USER is {users[-1]}"


def test_dockerfile_installs_with_constraints() -> None:
    installs = [shlex.split(args) for keyword, args in _dockerfile()
                if keyword == "RUN" and "pip install" in args]
    assert installs, "no `pip install` in the Dockerfile"
    for words in installs:
        assert "--no-cache-dir" in words
        pairs = set(zip(words, words[1:]))
        assert {("-c", "constraints.txt"), ("--constraint", "constraints.txt")} & pairs, (
            f"`{' '.join(words)}` does not install with -c constraints.txt")


def test_dockerfile_copies_only_existing_needed_files() -> None:
    patterns = _dockerignore_patterns()
    copied = []
    for keyword, arguments in _dockerfile():
        if keyword not in ("COPY", "ADD"):
            continue
        words = [w for w in _args(arguments) if not w.startswith("--")]
        assert not any(w.startswith("--from") for w in _args(arguments)), "multi-stage copy"
        copied += words[:-1]
    assert "constraints.txt" in copied and "pyproject.toml" in copied
    for source in copied:
        assert source not in (".", "./"), "COPY of the whole context brings in everything"
        assert not source.startswith("dev/"), f"{source}: the dev broker is not for the image"
        assert (REPO / source).exists(), f"COPY {source}: no such file in the repository"
        assert not _dockerignored(source.rstrip("/"), patterns), (
            f"COPY {source}: .dockerignore keeps it out of the build context")


def test_dockerfile_data_and_cache_dirs() -> None:
    instructions = _dockerfile()
    env = _dockerfile_env()
    assert set(k for k in env if k.startswith("CALLSLO_")) <= set(_ENV_OVERRIDES)
    volumes = [v for keyword, args in instructions if keyword == "VOLUME" for v in _args(args)]
    assert env["CALLSLO_DATA_DIR"] in volumes, "the data directory must be a VOLUME"
    assert Settings.load(env=env).worker.data_dir == env["CALLSLO_DATA_DIR"]
    chowns = " ".join(args for keyword, args in instructions
                      if keyword == "RUN" and "chown" in args)
    for var in ("CALLSLO_DATA_DIR", "NUMBA_CACHE_DIR"):
        path = Path(env[var])
        assert any(str(p) in chowns.split() for p in (path, *path.parents[:-1])), (
            f"{var}={path} is not chowned to the runtime user")


def test_dockerfile_exposes_the_web_port() -> None:
    exposed = [p.split("/")[0] for keyword, args in _dockerfile()
               if keyword == "EXPOSE" for p in args.split()]
    assert str(Settings().web.port) in exposed


def test_dockerignore_excludes_local_state() -> None:
    patterns = _dockerignore_patterns()
    for path in (".venv", ".git", ".pytest_cache", "streams/__pycache__/cli.cpython-311.pyc",
                 "callslo.egg-info"):
        assert _dockerignored(path, patterns), f".dockerignore lets {path} into the context"
