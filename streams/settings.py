"""The one settings object: built once at start from a TOML file and the environment, then frozen.

Sections of the file map to the dataclasses below (``[kafka]``, ``[topics]``, ``[ingest]``,
``[web]``, ``[worker]``, ``[engine]``, ``[queues]``). Every key is optional; unknown keys and wrong types are errors that
name the key, so a typo never silently falls back to a default.

Environment variables override the file (they are what docker-compose sets):

=========================  =====================
``CALLSLO_BOOTSTRAP``      ``kafka.bootstrap``
``CALLSLO_WEB_HOST``       ``web.host``
``CALLSLO_WEB_PORT``       ``web.port``
``CALLSLO_PARTITIONS``     ``topics.partitions``
``CALLSLO_DATA_DIR``       ``worker.data_dir``
=========================  =====================

Kafka security (see docs/security.md) has its own variables, ``CALLSLO_KAFKA_<KEY>`` for each
key of ``[kafka]`` below: ``CALLSLO_KAFKA_SECURITY_PROTOCOL``, ``CALLSLO_KAFKA_SASL_MECHANISM``,
``CALLSLO_KAFKA_SASL_USERNAME``, ``CALLSLO_KAFKA_SASL_PASSWORD_ENV``,
``CALLSLO_KAFKA_SASL_PASSWORD_FILE``, ``CALLSLO_KAFKA_SSL_CAFILE``, ``CALLSLO_KAFKA_SSL_CERTFILE``,
``CALLSLO_KAFKA_SSL_KEYFILE``, ``CALLSLO_KAFKA_SSL_CHECK_HOSTNAME``. The SASL password itself is
never a setting: it is read at start from the environment variable named by
``kafka.sasl_password_env`` or from the file named by ``kafka.sasl_password_file``.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

from streams.errors import ConfigError
from streams.secret import Secret, secret_from_env, secret_from_file
from streams.slo.objectives import SloSettings

__all__ = [
    "Settings",
    "KafkaSettings",
    "TopicSettings",
    "IngestSettings",
    "WebSettings",
    "WorkerSettings",
    "EngineSettings",
    "QueuePolicy",
    "QueueSettings",
    "SL_FORMULAS",
    "SECURITY_PROTOCOLS",
    "SASL_MECHANISMS",
]

#: How ``service_level`` is computed (see docs/metrics.md).
SL_FORMULAS = ("offered", "ignore_abandons", "abandons_within_good", "answered")


#: ``kafka.security_protocol`` values, as Kafka names them.
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
#: ``kafka.sasl_mechanism`` values.
SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


@dataclass(frozen=True)
class KafkaSettings:
    """How to reach the Kafka cluster, and how to authenticate and encrypt the connection."""

    bootstrap: str = "127.0.0.1:9092"
    client_id: str = "callslo"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    sasl_username: str = ""
    # Where the password comes from: the name of an environment variable, or a file whose
    # first line is the password. Exactly one of them with SASL, neither without.
    sasl_password_env: str = ""
    sasl_password_file: str = ""
    # Empty cafile means the system's trusted CAs; certfile/keyfile are the client's own
    # certificate (PEM) when the cluster asks for one (mutual TLS).
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    ssl_check_hostname: bool = True
    # Filled from sasl_password_env/sasl_password_file by from_table; not a settings key.
    sasl_password: Secret = field(default_factory=Secret, repr=False)

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def __post_init__(self) -> None:
        _require(self.security_protocol in SECURITY_PROTOCOLS, "kafka.security_protocol",
                 f"must be one of {SECURITY_PROTOCOLS}, got {self.security_protocol!r}")
        _require(self.sasl_mechanism in SASL_MECHANISMS, "kafka.sasl_mechanism",
                 f"must be one of {SASL_MECHANISMS}, got {self.sasl_mechanism!r}")
        sasl_keys = ("sasl_username", "sasl_password_env", "sasl_password_file")
        if self.uses_sasl:
            _require(bool(self.sasl_username), "kafka.sasl_username",
                     f"is required with security_protocol {self.security_protocol}")
            _require(not (self.sasl_password_env and self.sasl_password_file),
                     "kafka.sasl_password_env",
                     "and kafka.sasl_password_file are both set; keep the one that holds the password")
            _require(bool(self.sasl_password), "kafka.sasl_password_env",
                     f"or kafka.sasl_password_file is required with security_protocol "
                     f"{self.security_protocol} (the password is never written in the settings file)")
        else:
            for key in sasl_keys:
                _require(not getattr(self, key), f"kafka.{key}",
                         f"is set but kafka.security_protocol is {self.security_protocol}; "
                         "use SASL_SSL or SASL_PLAINTEXT, or remove the key")
        if not self.uses_tls:
            for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
                _require(not getattr(self, key), f"kafka.{key}",
                         f"is set but kafka.security_protocol is {self.security_protocol}; "
                         "use SSL or SASL_SSL, or remove the key")
        _require(not self.ssl_keyfile or bool(self.ssl_certfile), "kafka.ssl_keyfile",
                 "needs kafka.ssl_certfile (the certificate that goes with the key)")

    @classmethod
    def from_table(cls, values: Mapping[str, Any], env: Mapping[str, str]) -> "KafkaSettings":
        """Build ``[kafka]``, reading the SASL password from ``env`` or its file."""
        if "sasl_password" in values:
            raise ConfigError("kafka.sasl_password cannot be written in the settings file; put the "
                              "password in an environment variable named by kafka.sasl_password_env "
                              "or in a file named by kafka.sasl_password_file")
        _check_types(cls, "kafka", values)
        password = Secret()
        var, path = values.get("sasl_password_env", ""), values.get("sasl_password_file", "")
        if var and not path:
            password = secret_from_env(env, var, "kafka.sasl_password_env")
        elif path and not var:
            password = secret_from_file(path, "kafka.sasl_password_file")
        for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            given = values.get(key, "")
            if given and not Path(given).expanduser().is_file():
                raise ConfigError(f"kafka.{key} = {given!r}: no such file")
        return cls(**values, sasl_password=password)


@dataclass(frozen=True)
class TopicSettings:
    """Topic names (versioned, dotted) and how new topics are created."""

    events: str = "callcenter.events.v1"
    dlq: str = "callcenter.events.dlq.v1"
    batches: str = "callslo.internal.event-batches.v1"
    intervals: str = "slo.queue-intervals.v1"
    realtime: str = "slo.queue-realtime.v1"
    # Written by the SLO evaluation (docs/slo.md); read by the wallboard.
    alerts: str = "slo.alerts.v1"
    staffing: str = "slo.staffing.v1"
    budget: str = "slo.error-budget.v1"
    # First-contact resolution (docs/metrics.md): the engine's contacts, keyed by tenant, and
    # the final per-interval records the FCR stage makes of them.
    contacts: str = "callslo.internal.contacts.v1"
    fcr: str = "slo.queue-fcr.v1"
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
    # How often stage 1 tells stage 2 that a caught-up partition has had no new events.
    heartbeat_ms: int = 1000

    def __post_init__(self) -> None:
        _require(self.max_message_bytes >= 256, "ingest.max_message_bytes", "must be >= 256")
        _require(self.max_future_skew_s >= 0, "ingest.max_future_skew_s", "must be >= 0")
        _require(self.max_age_days >= 1, "ingest.max_age_days", "must be >= 1")
        _require(self.batch_max_events >= 1, "ingest.batch_max_events", "must be >= 1")
        _require(self.batch_max_ms >= 1, "ingest.batch_max_ms", "must be >= 1")
        _require(self.heartbeat_ms >= 10, "ingest.heartbeat_ms", "must be >= 10")


@dataclass(frozen=True)
class WebSettings:
    """The worker's web server (wallboard, API, metrics). Loopback unless told otherwise."""

    host: str = "127.0.0.1"
    port: int = 6066
    # The address other workers and clients use to reach this one; empty means ``host``, or
    # this machine's hostname when ``host`` binds every interface (as in a container).
    advertised_host: str = ""
    # Access to the wallboard and API (docs/wallboard.md).
    # The bearer token is never written in the file: it comes from $CALLSLO_WEB_TOKEN or from
    # the first line of token_file. Without one, a host other than loopback is refused unless
    # allow_open says the network in front of the worker is trusted.
    token_file: str = ""
    allow_open: bool = False
    # Queues the wallboard keeps in memory at most (the least recently updated go first).
    max_queues: int = 5000
    token: Secret = field(default_factory=Secret, repr=False)

    @classmethod
    def from_table(cls, values: Mapping[str, Any], env: Mapping[str, str]) -> "WebSettings":
        """Build ``[web]``, reading the token from ``$CALLSLO_WEB_TOKEN`` or ``token_file``."""
        if "token" in values:
            raise ConfigError("web.token cannot be written in the settings file; set "
                              "CALLSLO_WEB_TOKEN or put it in a file named by web.token_file")
        _check_types(cls, "web", values)
        token = Secret()
        if values.get("token_file"):
            token = secret_from_file(values["token_file"], "web.token_file")
        elif env.get("CALLSLO_WEB_TOKEN"):
            token = secret_from_env(env, "CALLSLO_WEB_TOKEN", "CALLSLO_WEB_TOKEN")
        return cls(**values, token=token)

    @property
    def public_host(self) -> str:
        if self.advertised_host:
            return self.advertised_host
        if self.host in ("0.0.0.0", "::", ""):
            return socket.gethostname()
        return self.host

    def __post_init__(self) -> None:
        _require(0 <= self.port <= 65535, "web.port", "must be a TCP port (0-65535)")
        _require(self.max_queues >= 1, "web.max_queues", "must be >= 1")


@dataclass(frozen=True)
class WorkerSettings:
    """The Faust worker process."""

    app_id: str = "callslo"
    data_dir: str = "~/.cache/callslo/worker"
    # Faust's default (60 s) makes the first group join take ~30 s; a worker that dies is
    # noticed after this many seconds.
    broker_session_timeout_s: int = 10
    broker_heartbeat_interval_s: int = 3
    # How long the broker may hold a fetch of the agents' consumer when a partition has no
    # data. Faust's fixed 1500 ms delayed column batches by 1-1.8 s (bench/README.md).
    fetch_max_wait_ms: int = 100

    def __post_init__(self) -> None:
        _require(
            self.broker_session_timeout_s > self.broker_heartbeat_interval_s > 0,
            "worker.broker_session_timeout_s",
            "must be greater than worker.broker_heartbeat_interval_s, which must be > 0",
        )
        _require(10 <= self.fetch_max_wait_ms <= 1500, "worker.fetch_max_wait_ms",
                 "must be 10..1500 milliseconds")


@dataclass(frozen=True)
class EngineSettings:
    """Stage 2: intervals, lateness, state layout. Whole-deployment settings."""

    group_id: str = "callslo-engine"
    interval_s: int = 900
    allowed_lateness_s: int = 120
    idle_close_s: int = 60
    # Queue state is written to the changelog in this many shards per partition, so the
    # number of changelog messages per batch stays bounded whatever the number of queues.
    shards_per_partition: int = 16
    # A call queued this long ago without an outcome is forgotten (it no longer counts as
    # waiting now, and a late outcome without wait_ms gets no wait).
    open_call_ttl_s: int = 4 * 3600
    # Realtime records (calls waiting, rolling windows) go out at most this often per queue.
    realtime_interval_s: float = 5.0
    # Changed queue state goes to the changelog at most this often per partition (0: after
    # every batch). A crash in between loses nothing: the batches since the last write are
    # read again from the internal topic and re-applied (streams/agents/engine.py).
    state_flush_ms: int = 1000

    def __post_init__(self) -> None:
        _require(self.interval_s >= 60 and 86_400 % self.interval_s == 0, "engine.interval_s",
                 "must be at least 60 and divide a day (e.g. 900, 1800, 3600)")
        _require(self.allowed_lateness_s >= 0, "engine.allowed_lateness_s", "must be >= 0")
        _require(self.idle_close_s >= 0, "engine.idle_close_s", "must be >= 0")
        _require(1 <= self.shards_per_partition <= 4096, "engine.shards_per_partition",
                 "must be 1..4096")
        _require(self.open_call_ttl_s >= 60, "engine.open_call_ttl_s", "must be >= 60")
        _require(self.realtime_interval_s >= 0.1, "engine.realtime_interval_s",
                 "must be >= 0.1")
        _require(0 <= self.state_flush_ms <= 60_000, "engine.state_flush_ms",
                 "must be 0..60000")

    @property
    def interval_ms(self) -> int:
        return self.interval_s * 1000

    @property
    def allowed_lateness_ms(self) -> int:
        return self.allowed_lateness_s * 1000


@dataclass(frozen=True)
class QueuePolicy:
    """The service-level rules of one queue."""

    threshold_s: float = 20.0
    sl_target: float = 0.80
    short_abandon_s: float = 5.0
    sl_formula: str = "offered"

    def __post_init__(self) -> None:
        # TOML's 30 and 30.0 mean the same threshold; records always carry a float.
        for name in ("threshold_s", "sl_target", "short_abandon_s"):
            object.__setattr__(self, name, float(getattr(self, name)))
        _require(0 <= self.threshold_s <= 86_400, "threshold_s", "must be 0..86400 seconds")
        _require(0 < self.sl_target <= 1, "sl_target", "must be a fraction in (0, 1], e.g. 0.8")
        _require(0 <= self.short_abandon_s <= 3600, "short_abandon_s", "must be 0..3600 seconds")
        _require(self.sl_formula in SL_FORMULAS, "sl_formula", f"must be one of {SL_FORMULAS}")

    @cached_property
    def threshold_ms(self) -> int:
        return round(self.threshold_s * 1000)

    @cached_property
    def short_abandon_ms(self) -> int:
        return round(self.short_abandon_s * 1000)


@dataclass(frozen=True)
class QueueSettings:
    """Per-queue rules: ``[queues.defaults]``, then ``[queues.tenants.<tenant>]``, then
    ``[queues.overrides."<tenant>/<queue>"]``, each overriding the keys it names."""

    defaults: QueuePolicy = field(default_factory=QueuePolicy)
    tenants: tuple[tuple[str, QueuePolicy], ...] = ()
    overrides: tuple[tuple[str, QueuePolicy], ...] = ()

    def policy(self, tenant: str, queue: str) -> QueuePolicy:
        """The rules for one queue."""
        found = self._by_queue.get(f"{tenant}/{queue}")
        if found is None:
            found = self._by_tenant.get(tenant, self.defaults)
        return found

    # Built once: every new queue asks (the settings are frozen, so they never go stale).
    @cached_property
    def _by_queue(self) -> dict[str, QueuePolicy]:
        return dict(self.overrides)

    @cached_property
    def _by_tenant(self) -> dict[str, QueuePolicy]:
        return dict(self.tenants)

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> "QueueSettings":
        unknown = sorted(set(table) - {"defaults", "tenants", "overrides"})
        if unknown:
            raise ConfigError(f"unknown key(s) {unknown} in [queues]; known: defaults, tenants, overrides")
        defaults = _policy(QueuePolicy(), "queues.defaults", table.get("defaults", {}))
        tenants = {}
        for tenant, values in _table(table, "tenants").items():
            tenants[tenant] = _policy(defaults, f"queues.tenants.{tenant}", values)
        overrides = []
        for key, values in _table(table, "overrides").items():
            tenant, slash, queue = key.partition("/")
            if not slash or not tenant or not queue or "/" in queue:
                raise ConfigError(f'[queues.overrides] key "{key}" must be "<tenant>/<queue>"')
            overrides.append((key, _policy(tenants.get(tenant, defaults),
                                           f'queues.overrides."{key}"', values)))
        return cls(defaults, tuple(sorted(tenants.items())), tuple(overrides))


def _table(table: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = table.get(name, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"[queues.{name}] must be a table")
    return value


def _policy(base: QueuePolicy, where: str, values: Any) -> QueuePolicy:
    if not isinstance(values, Mapping):
        raise ConfigError(f"[{where}] must be a table")
    _check_types(QueuePolicy, where, values)
    try:
        return dataclasses.replace(base, **values)
    except ConfigError as exc:
        raise ConfigError(f"{where}.{exc}") from None


@dataclass(frozen=True)
class Settings:
    """Everything a callslo process needs to know, in one immutable object."""

    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    topics: TopicSettings = field(default_factory=TopicSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    web: WebSettings = field(default_factory=WebSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    queues: QueueSettings = field(default_factory=QueueSettings)
    slo: SloSettings = field(default_factory=SloSettings)  # docs/slo.md

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
            if name == "queues":
                built[name] = QueueSettings.from_table(values)
            elif name == "slo":  # objectives, alert limits (docs/slo.md)
                built[name] = SloSettings.from_table(values)
            elif name == "kafka":
                built[name] = KafkaSettings.from_table(values, env or {})
            elif name == "web":  # the token comes from the environment or a file
                built[name] = WebSettings.from_table(values, env or {})
            else:
                built[name] = _build_section(f.default_factory, name, values)  # type: ignore[arg-type]
        return cls(**built)


def _env_bool(value: str) -> bool:
    if value.strip().lower() not in ("true", "false"):
        raise ValueError("must be true or false")
    return value.strip().lower() == "true"


_ENV_OVERRIDES = {
    "CALLSLO_BOOTSTRAP": ("kafka", "bootstrap", str),
    "CALLSLO_WEB_HOST": ("web", "host", str),
    "CALLSLO_WEB_PORT": ("web", "port", int),
    "CALLSLO_PARTITIONS": ("topics", "partitions", int),
    "CALLSLO_DATA_DIR": ("worker", "data_dir", str),
    "CALLSLO_WEB_ALLOW_OPEN": ("web", "allow_open", _env_bool),
    # Kafka security (docs/security.md); the password itself is read by KafkaSettings.from_table.
    **{f"CALLSLO_KAFKA_{key.upper()}": ("kafka", key, str) for key in (
        "security_protocol", "sasl_mechanism", "sasl_username", "sasl_password_env",
        "sasl_password_file", "ssl_cafile", "ssl_certfile", "ssl_keyfile")},
    "CALLSLO_KAFKA_SSL_CHECK_HOSTNAME": ("kafka", "ssl_check_hostname", _env_bool),
}


def _build_section(cls: type, section: str, values: Mapping[str, Any]) -> Any:
    _check_types(cls, section, values)
    return cls(**values)


def _check_types(cls: type, section: str, values: Mapping[str, Any]) -> None:
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


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key} {message}")
