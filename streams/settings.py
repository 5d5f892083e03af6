"""The one settings object: built once at start from a TOML file and the environment, then frozen.

Sections of the file map to the dataclasses below (``[kafka]``, ``[topics]``, ``[ingest]``,
``[web]``, ``[worker]``). Every key is optional; unknown keys and wrong types are errors that
name the key, so a typo never silently falls back to a default.

Environment variables override the file (they are what docker-compose sets):

=========================  =====================
``CALLSLO_BOOTSTRAP``      ``kafka.bootstrap``
``CALLSLO_WEB_HOST``       ``web.host``
``CALLSLO_WEB_PORT``       ``web.port``
``CALLSLO_PARTITIONS``     ``topics.partitions``
``CALLSLO_DATA_DIR``       ``worker.data_dir``
=========================  =====================
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from streams.errors import ConfigError

__all__ = [
    "Settings",
    "KafkaSettings",
    "TopicSettings",
    "IngestSettings",
    "WebSettings",
    "WorkerSettings",
]


@dataclass(frozen=True)
class KafkaSettings:
    """How to reach the Kafka cluster."""

    bootstrap: str = "127.0.0.1:9092"
    client_id: str = "callslo"


@dataclass(frozen=True)
class TopicSettings:
    """Topic names (versioned, dotted) and how new topics are created."""

    events: str = "callcenter.events.v1"
    dlq: str = "callcenter.events.dlq.v1"
    batches: str = "callslo.internal.event-batches.v1"
    # The events topic and the internal batch topic must have the same partition count:
    # stage 1 writes the batch of source partition p to partition p.
    partitions: int = 6
    replication: int = 1
    create_missing: bool = True

    def __post_init__(self) -> None:
        _require(self.partitions >= 1, "topics.partitions", "must be >= 1")
        _require(self.replication >= 1, "topics.replication", "must be >= 1")


@dataclass(frozen=True)
class IngestSettings:
    """Stage 1: validation limits and batch bounds."""

    group_id: str = "callslo-ingest"
    max_message_bytes: int = 1_048_576
    max_future_skew_s: int = 300
    # Events older than this are refused as ``ts_too_old``: they come from a broken clock or
    # a mistaken replay, never from a live ACD.
    max_age_days: int = 3660
    batch_max_events: int = 10_000
    batch_max_ms: int = 200

    def __post_init__(self) -> None:
        _require(self.max_message_bytes >= 256, "ingest.max_message_bytes", "must be >= 256")
        _require(self.max_future_skew_s >= 0, "ingest.max_future_skew_s", "must be >= 0")
        _require(self.max_age_days >= 1, "ingest.max_age_days", "must be >= 1")
        _require(self.batch_max_events >= 1, "ingest.batch_max_events", "must be >= 1")
        _require(self.batch_max_ms >= 1, "ingest.batch_max_ms", "must be >= 1")


@dataclass(frozen=True)
class WebSettings:
    """The worker's web server (wallboard, API, metrics). Loopback unless told otherwise."""

    host: str = "127.0.0.1"
    port: int = 6066

    def __post_init__(self) -> None:
        _require(0 <= self.port <= 65535, "web.port", "must be a TCP port (0-65535)")


@dataclass(frozen=True)
class WorkerSettings:
    """The Faust worker process."""

    app_id: str = "callslo"
    data_dir: str = "~/.cache/callslo/worker"
    # Faust's default (60 s) makes the first group join take ~30 s; a worker that dies is
    # noticed after this many seconds.
    broker_session_timeout_s: int = 10
    broker_heartbeat_interval_s: int = 3

    def __post_init__(self) -> None:
        _require(
            self.broker_session_timeout_s > self.broker_heartbeat_interval_s > 0,
            "worker.broker_session_timeout_s",
            "must be greater than worker.broker_heartbeat_interval_s, which must be > 0",
        )


@dataclass(frozen=True)
class Settings:
    """Everything a callslo process needs to know, in one immutable object."""

    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    topics: TopicSettings = field(default_factory=TopicSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    web: WebSettings = field(default_factory=WebSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None,
             env: Mapping[str, str] | None = None) -> "Settings":
        """Read ``path`` (TOML, optional) and apply environment overrides from ``env``."""
        table: dict[str, Any] = {}
        if path is not None:
            try:
                table = tomllib.loads(Path(path).read_text(encoding="utf-8"))
            except FileNotFoundError as exc:
                raise ConfigError(f"settings file {path} does not exist") from exc
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"settings file {path} is not valid TOML: {exc}") from exc
        return cls.from_mapping(table, os.environ if env is None else env)

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any],
                     env: Mapping[str, str] | None = None) -> "Settings":
        """Build settings from an already parsed table (and optional environment)."""
        table = {section: dict(values) if isinstance(values, Mapping) else values
                 for section, values in table.items()}
        for var, (section, key, convert) in _ENV_OVERRIDES.items():
            if env and env.get(var):
                try:
                    value = convert(env[var])
                except ValueError as exc:
                    raise ConfigError(f"environment variable {var}={env[var]!r}: {exc}") from exc
                table.setdefault(section, {})[key] = value
        sections = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(table) - set(sections))
        if unknown:
            raise ConfigError(f"unknown settings section(s) {unknown}; known: {sorted(sections)}")
        built = {}
        for name, f in sections.items():
            values = table.get(name, {})
            if not isinstance(values, Mapping):
                raise ConfigError(f"settings section [{name}] must be a table")
            built[name] = _build_section(f.default_factory, name, values)  # type: ignore[arg-type]
        return cls(**built)


_ENV_OVERRIDES = {
    "CALLSLO_BOOTSTRAP": ("kafka", "bootstrap", str),
    "CALLSLO_WEB_HOST": ("web", "host", str),
    "CALLSLO_WEB_PORT": ("web", "port", int),
    "CALLSLO_PARTITIONS": ("topics", "partitions", int),
    "CALLSLO_DATA_DIR": ("worker", "data_dir", str),
}


def _build_section(cls: type, section: str, values: Mapping[str, Any]) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in [{section}]; known: {sorted(fields)}")
    for key, value in values.items():
        expected = type(getattr(cls(), key))
        # bool is an int in Python; neither may stand in for the other in a settings file.
        if type(value) is not expected and not (expected is float and type(value) is int):
            raise ConfigError(
                f"{section}.{key} must be {expected.__name__}, got {type(value).__name__} {value!r}")
    return cls(**values)


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key} {message}")
