"""SLO definitions: the ``[slo]`` section of the settings file, validated at start.

Objectives are resolved per queue like ``[queues]``: ``[slo.defaults]``, then
``[slo.tenants.<tenant>]``, then ``[slo.overrides."<tenant>/<queue>"]``; each level names whole
objectives (``[slo.defaults.objectives.<name>]``) and replaces an objective of the same name
key by key. ``[slo.alerts]`` holds the alert limits. docs/slo.md has a full example.

This module imports nothing from :mod:`streams.settings` (which imports it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from streams.errors import ConfigError

__all__ = ["INDICATORS", "BUDGETING", "WINDOWS", "CALENDAR_PERIODS", "Objective",
           "AlertLimits", "SloSettings"]

#: What an objective measures; each is a ratio good / total per interval record, except
#: ``asa``, which compares the interval's ASA with ``threshold_s`` (timeslices only).
INDICATORS = ("service_level", "abandon_rate", "asa", "transfer_rate",
              "first_contact_resolution", "disposition_coverage")
BUDGETING = ("occurrences", "timeslices")
WINDOWS = ("rolling", "calendar")
CALENDAR_PERIODS = ("week", "month", "quarter")


@dataclass(frozen=True)
class Objective:
    """One SLO of a queue. ``target`` is always the share that must be *good*: calls (budgeting
    ``occurrences``) or intervals (``timeslices``). An abandon rate of at most 5 % is
    ``indicator = "abandon_rate"``, ``target = 0.95`` (95 % of offered calls not abandoned)."""

    indicator: str = "service_level"
    # 0 means "the queue's sl_target" ([queues]) for service_level; required otherwise.
    target: float = 0.0
    # asa only: an interval is good when its ASA is at most this many seconds.
    threshold_s: float = 0.0
    window: str = "rolling"
    window_days: int = 30
    calendar_period: str = "month"
    time_zone: str = "UTC"
    budgeting: str = "occurrences"
    # timeslices: an interval is good when its ratio reaches this (0: the same as target).
    timeslice_target: float = 0.0

    def check(self, where: str) -> None:
        """Raise :class:`ConfigError` naming ``where`` and the key for the first bad value."""
        def need(ok: bool, key: str, message: str) -> None:
            if not ok:
                raise ConfigError(f"{where}.{key} {message}")

        need(self.indicator in INDICATORS, "indicator", f"must be one of {INDICATORS}, got "
             f"{self.indicator!r}")
        need(self.budgeting in BUDGETING, "budgeting", f"must be one of {BUDGETING}, got "
             f"{self.budgeting!r}")
        need(self.window in WINDOWS, "window", f"must be one of {WINDOWS}, got {self.window!r}")
        need(1 <= self.window_days <= 400, "window_days", "must be 1..400 days (interval "
             "records are kept 400 days)")
        need(self.calendar_period in CALENDAR_PERIODS, "calendar_period",
             f"must be one of {CALENDAR_PERIODS}, got {self.calendar_period!r}")
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            need(False, "time_zone", f"{self.time_zone!r} is not a known time zone (an IANA "
                 "name such as UTC or Europe/Berlin)")
        if self.indicator == "service_level":
            need(self.target == 0.0 or 0 < self.target < 1, "target",
                 "must be a fraction in (0, 1), e.g. 0.8, or left out for the queue's sl_target")
        else:
            need(0 < self.target < 1, "target", f"is required for indicator {self.indicator!r}: "
                 "the share that must be good, a fraction in (0, 1)")
        need(0 <= self.timeslice_target < 1, "timeslice_target", "must be a fraction in [0, 1)")
        if self.indicator == "asa":
            need(self.budgeting == "timeslices", "budgeting", "must be \"timeslices\" for "
                 "indicator \"asa\": an average has no good or bad calls to count")
            need(self.threshold_s > 0, "threshold_s", "is required for indicator \"asa\" "
                 "(seconds, > 0)")
        else:
            need(self.threshold_s == 0.0, "threshold_s", "applies to indicator \"asa\" only; "
                 "the service-level threshold is the queue's threshold_s in [queues]")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


@dataclass(frozen=True)
class AlertLimits:
    """``[slo.alerts]``: limits of the alert kinds (docs/slo.md lists every rule)."""

    oldest_wait_s: float = 120.0
    calls_waiting: int = 20
    # The rolling 15-minute service level fires below its target (the queue's sl_target)
    # only when at least this many calls were offered in the window.
    sl_15m_min_offered: int = 10
    volume_spike_ratio: float = 1.5
    volume_spike_min_calls: int = 20
    # A value must stay past the limit this long before an alert fires, and back inside the
    # hysteresis band this long before it resolves (realtime kinds; interval kinds hold for
    # one interval before resolving).
    hold_s: float = 60.0
    # Hysteresis: a limit-above alert resolves below limit * (1 - hysteresis), a limit-below
    # alert above limit * (1 + hysteresis) (capped at 1 for fractions).
    hysteresis: float = 0.1
    # Realtime snapshots older than this (by the worker's clock) update state but raise no
    # alert: a worker catching up on a backlog does not page for the past.
    stale_after_s: float = 900.0

    def check(self) -> None:
        def need(ok: bool, key: str, message: str) -> None:
            if not ok:
                raise ConfigError(f"slo.alerts.{key} {message}")

        need(self.oldest_wait_s > 0, "oldest_wait_s", "must be > 0 seconds")
        need(self.calls_waiting >= 1, "calls_waiting", "must be >= 1")
        need(self.sl_15m_min_offered >= 1, "sl_15m_min_offered", "must be >= 1")
        need(self.volume_spike_ratio > 1, "volume_spike_ratio", "must be > 1 (1.5 = 50 % "
             "above the expected arrivals)")
        need(self.volume_spike_min_calls >= 1, "volume_spike_min_calls", "must be >= 1")
        need(0 <= self.hold_s <= 3600, "hold_s", "must be 0..3600 seconds")
        need(0 <= self.hysteresis < 1, "hysteresis", "must be a fraction in [0, 1)")
        need(self.stale_after_s > 0, "stale_after_s", "must be > 0 seconds")


@dataclass(frozen=True)
class SloSettings:
    """The whole ``[slo]`` section: objectives per queue, alert limits, quality and forecast
    settings."""

    defaults: tuple[tuple[str, Objective], ...] = (("service_level", Objective()),)
    tenants: tuple[tuple[str, tuple[tuple[str, Objective], ...]], ...] = ()
    overrides: tuple[tuple[str, tuple[tuple[str, Objective], ...]], ...] = ()
    alerts: AlertLimits = field(default_factory=AlertLimits)
    # A call is unresolved when the same caller calls the same tenant again this soon.
    fcr_window_s: int = 86_400
    # Seasonal forecast: the same interval of the same weekday over this many past weeks.
    forecast_weeks: int = 4
    # EWMA weight of the newest interval when no past week is known.
    forecast_ewma_alpha: float = 0.3
    # Mean caller patience (Erlang A) is estimated over this many past days of the queue.
    patience_days: int = 7

    def objectives(self, tenant: str, queue: str) -> dict[str, Objective]:
        """The objectives of one queue by name."""
        found = self._by_queue.get(f"{tenant}/{queue}")
        if found is None:
            found = self._by_tenant.get(tenant, self.defaults)
        return dict(found)

    # Asked for every record the SLO stage reads: the lookups are built once (the settings
    # are frozen, so a cached value never goes stale).
    @cached_property
    def _by_queue(self) -> dict[str, tuple[tuple[str, Objective], ...]]:
        return dict(self.overrides)

    @cached_property
    def _by_tenant(self) -> dict[str, tuple[tuple[str, Objective], ...]]:
        return dict(self.tenants)

    @cached_property
    def longest_window_days(self) -> int:
        """Days of interval history the evaluator keeps for any queue."""
        every = [o for _, level in ((None, self.defaults),) + self.tenants + self.overrides
                 for _, o in level]
        windows = [o.window_days if o.window == "rolling" else 92 for o in every]
        return max(windows + [7 * self.forecast_weeks, self.patience_days, 3])

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> "SloSettings":
        """Build ``[slo]`` from the parsed TOML table; errors name the key."""
        known = {"defaults", "tenants", "overrides", "alerts", "fcr_window_s", "forecast_weeks",
                 "forecast_ewma_alpha", "patience_days"}
        unknown = sorted(set(table) - known)
        if unknown:
            raise ConfigError(f"unknown key(s) {unknown} in [slo]; known: {sorted(known)}")
        scalars = {k: table[k] for k in ("fcr_window_s", "forecast_weeks", "forecast_ewma_alpha",
                                         "patience_days") if k in table}
        _check_types(cls, "slo", scalars)
        base = dict(cls().defaults)
        defaults = _level(base, "slo.defaults", table.get("defaults", {}), replace_all=True)
        tenants = {t: _level(dict(defaults), f"slo.tenants.{t}", v)
                   for t, v in _sub(table, "tenants").items()}
        overrides = []
        for key, values in _sub(table, "overrides").items():
            tenant, slash, queue = key.partition("/")
            if not slash or not tenant or not queue or "/" in queue:
                raise ConfigError(f'[slo.overrides] key "{key}" must be "<tenant>/<queue>"')
            start = dict(dict(tenants).get(tenant, defaults))
            overrides.append((key, _level(start, f'slo.overrides."{key}"', values)))
        alert_values = table.get("alerts", {})
        if not isinstance(alert_values, Mapping):
            raise ConfigError("[slo.alerts] must be a table")
        _check_types(AlertLimits, "slo.alerts", alert_values)
        alerts = AlertLimits(**alert_values)
        alerts.check()
        built = cls(defaults, tuple(sorted(tenants.items())), tuple(overrides), alerts, **scalars)
        built._check()
        return built

    def _check(self) -> None:
        if not 3600 <= self.fcr_window_s <= 30 * 86_400:
            raise ConfigError("slo.fcr_window_s must be 3600..2592000 seconds (1 h .. 30 days)")
        if not 1 <= self.forecast_weeks <= 52:
            raise ConfigError("slo.forecast_weeks must be 1..52")
        if not 0 < self.forecast_ewma_alpha <= 1:
            raise ConfigError("slo.forecast_ewma_alpha must be in (0, 1]")
        if not 1 <= self.patience_days <= 90:
            raise ConfigError("slo.patience_days must be 1..90")


Level = tuple[tuple[str, Objective], ...]


def _sub(table: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = table.get(name, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"[slo.{name}] must be a table")
    return value


def _level(start: dict[str, Objective], where: str, values: Any,
           replace_all: bool = False) -> Level:
    """Objectives of one level: ``start`` with the level's objectives merged key by key.
    ``[slo.defaults]`` that names objectives replaces the built-in default entirely."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"[{where}] must be a table")
    unknown = sorted(set(values) - {"objectives"})
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in [{where}]; known: ['objectives']")
    named = values.get("objectives", {})
    if not isinstance(named, Mapping):
        raise ConfigError(f"[{where}.objectives] must be a table of objectives")
    result = {} if replace_all and named else dict(start)
    for name, fields in named.items():
        here = f"{where}.objectives.{name}"
        if not isinstance(fields, Mapping):
            raise ConfigError(f"[{here}] must be a table")
        _check_types(Objective, here, fields)
        objective = dataclasses.replace(result.get(name, Objective()), **fields)
        objective.check(here)
        result[name] = objective
    return tuple(sorted(result.items()))


def _check_types(cls: type, section: str, values: Mapping[str, Any]) -> None:
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in [{section}]; known: {sorted(fields)}")
    for key, value in values.items():
        expected = type(getattr(cls(), key))
        # bool is an int in Python; neither may stand in for the other in a settings file.
        if type(value) is not expected and not (expected is float and type(value) is int):
            raise ConfigError(
                f"{section}.{key} must be {expected.__name__}, got {type(value).__name__} {value!r}")
