"""What the simulator simulates: intraday arrival profiles, duration distributions and the
TOML scenario format (tenants, queues, agents with skills, shifts and breaks).

The format is documented in ``docs/simulator.md``; :data:`DEFAULT_SCENARIO_TOML` is the
built-in scenario, parsed by the same code as a user's file.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from streams.errors import ConfigError

__all__ = [
    "SLOTS_PER_DAY",
    "SLOT_MS",
    "DAY_MS",
    "Profile",
    "DurationSpec",
    "TransferSpec",
    "QueueSpec",
    "BreakSpec",
    "AgentGroup",
    "TenantSpec",
    "Scenario",
    "default_profile",
    "flat_profile",
    "parse_scenario",
    "load_scenario",
    "default_scenario",
    "stationary_scenario",
    "DEFAULT_SCENARIO_TOML",
]

DAY_MS = 86_400_000
SLOTS_PER_DAY = 96
SLOT_MS = DAY_MS // SLOTS_PER_DAY  # 15 minutes: the rate is constant within a slot

DISTRIBUTIONS = ("exponential", "lognormal", "fixed", "none")
TRANSFER_KINDS = ("queue", "blind", "attended")


@dataclass(frozen=True)
class Profile:
    """Share of a day's calls arriving in each 15-minute slot of the UTC day (sums to 1)."""

    shares: tuple[float, ...]

    @classmethod
    def from_weights(cls, weights: Any, where: str = "profile") -> "Profile":
        """24 hourly or 96 quarter-hourly non-negative weights, normalised to shares."""
        try:
            array = np.asarray(weights, dtype=np.float64)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a list of numbers") from None
        if array.ndim != 1 or array.size not in (24, SLOTS_PER_DAY):
            raise ConfigError(f"{where} must list 24 hourly or 96 quarter-hourly weights, "
                              f"got {array.size}")
        if not np.all(np.isfinite(array)) or np.any(array < 0) or array.sum() <= 0:
            raise ConfigError(f"{where} weights must be finite, >= 0 and not all 0")
        if array.size == 24:
            array = np.repeat(array, 4)
        return cls(tuple((array / array.sum()).tolist()))


def default_profile() -> Profile:
    """A weekday of a typical contact center: open 07:00-20:00 UTC, a morning peak near
    10:00 and a lower, broader afternoon peak near 14:30, on a base load."""
    hours = (np.arange(SLOTS_PER_DAY) + 0.5) / 4
    open_hours = (hours >= 7) & (hours < 20)
    weights = (0.15 + np.exp(-0.5 * ((hours - 10.0) / 1.3) ** 2)
               + 0.85 * np.exp(-0.5 * ((hours - 14.5) / 1.5) ** 2))
    return Profile.from_weights(np.where(open_hours, weights, 0.0))


def flat_profile() -> Profile:
    """The same rate all day and night."""
    return Profile.from_weights(np.ones(24))


_PROFILES = {"default": default_profile, "flat": flat_profile}


@dataclass(frozen=True)
class DurationSpec:
    """A random duration: ``dist`` with mean ``mean_s``; ``cv`` (standard deviation / mean)
    shapes the lognormal; only a ``share`` of calls get a non-zero value. ``none`` means
    never (zero for handle pieces, infinite for patience)."""

    dist: str = "none"
    mean_s: float = 0.0
    cv: float = 1.0
    share: float = 1.0

    def sample_ms(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` draws in whole milliseconds; -1 stands for "never" (``dist = "none"``)."""
        if self.dist == "none":
            return np.full(n, -1, dtype=np.int64)
        mean_ms = self.mean_s * 1000.0
        if self.dist == "exponential":
            values = rng.exponential(mean_ms, n)
        elif self.dist == "lognormal":
            sigma2 = math.log1p(self.cv * self.cv)
            values = rng.lognormal(math.log(mean_ms) - sigma2 / 2, math.sqrt(sigma2), n)
        else:
            values = np.full(n, mean_ms)
        if self.share < 1.0:
            values = np.where(rng.random(n) < self.share, values, 0.0)
        return np.rint(values).astype(np.int64)


@dataclass(frozen=True)
class TransferSpec:
    """A ``share`` of answered calls is transferred at the end of the talk: ``kind = "queue"``
    into queue ``to`` of the same tenant, otherwise to the extension ``to``."""

    share: float = 0.0
    to: str = ""
    kind: str = "queue"


@dataclass(frozen=True)
class QueueSpec:
    name: str
    arrivals_per_day: float
    profile: Profile
    talk: DurationSpec
    hold: DurationSpec = DurationSpec()
    wrapup: DurationSpec = DurationSpec()
    patience: DurationSpec = DurationSpec()
    max_wait_s: float | None = None
    transfer: TransferSpec = TransferSpec()


@dataclass(frozen=True)
class BreakSpec:
    at_s: int  # seconds after midnight UTC
    duration_s: int
    reason: str = "break"


@dataclass(frozen=True)
class AgentGroup:
    """``count`` agents with the same skills, shift and breaks. ``shift_s = None``: logged in
    for the whole run, leaving only when no call waits for them after it ends. Breaks are
    taken in ``break_waves`` waves ``break_stagger_s`` apart, so a queue is never emptied."""

    count: int
    skills: tuple[str, ...]
    shift_s: tuple[int, int] | None = None
    breaks: tuple[BreakSpec, ...] = ()
    break_waves: int = 3
    break_stagger_s: int = 900


@dataclass(frozen=True)
class TenantSpec:
    name: str
    queues: tuple[QueueSpec, ...]
    agents: tuple[AgentGroup, ...]
    repeat_caller_share: float = 0.15


@dataclass(frozen=True)
class Scenario:
    tenants: tuple[TenantSpec, ...] = field(default_factory=tuple)


DEFAULT_SCENARIO_TOML = """\
# Two tenants, four queues, multi-skilled agents on two shifts with breaks.
[[tenant]]
name = "acme"
repeat_caller_share = 0.15

[[tenant.queue]]
name = "support"
arrivals_per_day = 3000
profile = "default"
talk = { dist = "lognormal", mean_s = 270, cv = 0.9 }
hold = { dist = "exponential", mean_s = 40, share = 0.2 }
wrapup = { dist = "lognormal", mean_s = 35, cv = 0.6 }
patience = { dist = "exponential", mean_s = 240 }
max_wait_s = 900
transfer = { share = 0.04, to = "billing", kind = "queue" }

[[tenant.queue]]
name = "billing"
arrivals_per_day = 1200
profile = "default"
talk = { dist = "lognormal", mean_s = 200, cv = 0.8 }
wrapup = { dist = "fixed", mean_s = 20 }
patience = { dist = "exponential", mean_s = 180 }
max_wait_s = 600
transfer = { share = 0.02, to = "ext-2210", kind = "blind" }

[[tenant.agents]]
count = 34
skills = ["support"]
shift = ["07:00", "15:30"]
breaks = [{ at = "08:15", minutes = 15 }, { at = "12:30", minutes = 30, reason = "lunch" }]
break_stagger_minutes = 30

[[tenant.agents]]
count = 12
skills = ["billing", "support"]
shift = ["07:00", "15:30"]
breaks = [{ at = "08:15", minutes = 15 }, { at = "12:30", minutes = 30, reason = "lunch" }]
break_stagger_minutes = 30

[[tenant.agents]]
count = 10
skills = ["support", "billing"]
shift = ["09:00", "17:30"]
breaks = [{ at = "13:00", minutes = 30, reason = "lunch" }]
break_stagger_minutes = 30

[[tenant.agents]]
count = 14
skills = ["support", "billing"]
shift = ["11:30", "20:00"]
breaks = [{ at = "16:30", minutes = 30, reason = "lunch" }, { at = "18:30", minutes = 15 }]
break_stagger_minutes = 30

[[tenant]]
name = "globex"
repeat_caller_share = 0.10

[[tenant.queue]]
name = "sales"
arrivals_per_day = 1500
profile = "default"
talk = { dist = "exponential", mean_s = 240 }
wrapup = { dist = "exponential", mean_s = 30 }
patience = { dist = "lognormal", mean_s = 150, cv = 1.0 }

[[tenant.queue]]
name = "vip"
arrivals_per_day = 200
profile = "default"
talk = { dist = "lognormal", mean_s = 400, cv = 0.7 }
wrapup = { dist = "fixed", mean_s = 60 }
patience = { dist = "fixed", mean_s = 300 }
max_wait_s = 120
transfer = { share = 0.05, to = "sales", kind = "queue" }

[[tenant.agents]]
count = 16
skills = ["sales", "vip"]
shift = ["07:00", "15:30"]
breaks = [{ at = "08:30", minutes = 15 }, { at = "12:30", minutes = 30, reason = "lunch" }]
break_stagger_minutes = 30

[[tenant.agents]]
count = 10
skills = ["vip", "sales"]
shift = ["11:30", "20:00"]
breaks = [{ at = "16:30", minutes = 30, reason = "lunch" }]
break_stagger_minutes = 30
"""


def _keys(table: Mapping[str, Any], where: str, allowed: set[str], required: set[str]) -> None:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} must be a table")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in {where}; known: {', '.join(sorted(allowed))}")
    missing = sorted(required - set(table))
    if missing:
        raise ConfigError(f"{where} needs {', '.join(missing)}")


def _number(value: Any, where: str, low: float, high: float = math.inf) -> float:
    if type(value) not in (int, float) or not low <= value <= high:
        raise ConfigError(f"{where} must be a number in [{low:g}, {high:g}], got {value!r}")
    return float(value)


def _name(value: Any, where: str) -> str:
    if type(value) is not str or not value or "/" in value or not value.isprintable():
        raise ConfigError(f"{where} must be a non-empty printable name without '/', got {value!r}")
    return value


def _clock_s(value: Any, where: str) -> int:
    """``"HH:MM"`` (up to ``"24:00"``) as seconds after midnight."""
    try:
        hours, minutes = (int(part) for part in str(value).split(":"))
    except ValueError:
        raise ConfigError(f"{where} must be a time of day \"HH:MM\", got {value!r}") from None
    if not (0 <= hours <= 24 and 0 <= minutes < 60) or hours * 60 + minutes > 1440:
        raise ConfigError(f"{where} must be a time of day 00:00..24:00, got {value!r}")
    return hours * 3600 + minutes * 60


def _duration(table: Any, where: str) -> DurationSpec:
    _keys(table, where, {"dist", "mean_s", "cv", "share"}, {"dist"})
    dist = table["dist"]
    if dist not in DISTRIBUTIONS:
        raise ConfigError(f"{where}.dist must be one of {', '.join(DISTRIBUTIONS)}, got {dist!r}")
    if dist == "none":
        return DurationSpec()
    if "mean_s" not in table:
        raise ConfigError(f"{where} needs mean_s")
    return DurationSpec(dist, _number(table["mean_s"], f"{where}.mean_s", 0.001, 7 * 86_400),
                        _number(table.get("cv", 1.0), f"{where}.cv", 0.01, 10.0),
                        _number(table.get("share", 1.0), f"{where}.share", 0.0, 1.0))


def _profile(value: Any, where: str) -> Profile:
    if isinstance(value, str):
        if value not in _PROFILES:
            raise ConfigError(f"{where} must be one of {', '.join(_PROFILES)} or a list of weights")
        return _PROFILES[value]()
    return Profile.from_weights(value, where)


def _queue(table: Any, where: str) -> QueueSpec:
    _keys(table, where, {"name", "arrivals_per_day", "profile", "talk", "hold", "wrapup",
                         "patience", "max_wait_s", "transfer"}, {"name", "arrivals_per_day", "talk"})
    name = _name(table["name"], f"{where}.name")
    where = f"{where} ({name})"
    transfer = TransferSpec()
    if "transfer" in table:
        spec = table["transfer"]
        _keys(spec, f"{where}.transfer", {"share", "to", "kind"}, {"share", "to"})
        kind = spec.get("kind", "queue")
        if kind not in TRANSFER_KINDS:
            raise ConfigError(f"{where}.transfer.kind must be one of {', '.join(TRANSFER_KINDS)}")
        transfer = TransferSpec(_number(spec["share"], f"{where}.transfer.share", 0.0, 1.0),
                                _name(spec["to"], f"{where}.transfer.to"), kind)
    max_wait = table.get("max_wait_s")
    return QueueSpec(
        name=name,
        arrivals_per_day=_number(table["arrivals_per_day"], f"{where}.arrivals_per_day", 0.0, 1e8),
        profile=_profile(table.get("profile", "default"), f"{where}.profile"),
        talk=_duration(table["talk"], f"{where}.talk"),
        hold=_duration(table.get("hold", {"dist": "none"}), f"{where}.hold"),
        wrapup=_duration(table.get("wrapup", {"dist": "none"}), f"{where}.wrapup"),
        patience=_duration(table.get("patience", {"dist": "none"}), f"{where}.patience"),
        max_wait_s=None if max_wait is None else _number(max_wait, f"{where}.max_wait_s", 1.0, 86_400),
        transfer=transfer)


def _agents(table: Any, where: str, queues: set[str]) -> AgentGroup:
    _keys(table, where, {"count", "skills", "shift", "breaks", "break_waves",
                         "break_stagger_minutes"}, {"count", "skills"})
    count = int(_number(table["count"], f"{where}.count", 0, 100_000))
    skills = table["skills"]
    if not isinstance(skills, list) or not skills:
        raise ConfigError(f"{where}.skills must be a non-empty list of queue names")
    for skill in skills:
        if skill not in queues:
            raise ConfigError(f"{where}.skills names {skill!r}, which is not a queue of the tenant")
    shift = None
    if "shift" in table:
        if not isinstance(table["shift"], list) or len(table["shift"]) != 2:
            raise ConfigError(f"{where}.shift must be [\"HH:MM\", \"HH:MM\"]")
        shift = (_clock_s(table["shift"][0], f"{where}.shift"), _clock_s(table["shift"][1], f"{where}.shift"))
        if shift[1] <= shift[0]:
            raise ConfigError(f"{where}.shift must end after it starts (shifts stay within a UTC day)")
    breaks = []
    for i, item in enumerate(table.get("breaks", [])):
        spot = f"{where}.breaks[{i}]"
        _keys(item, spot, {"at", "minutes", "reason"}, {"at", "minutes"})
        reason = item.get("reason", "break")
        if type(reason) is not str or len(reason) > 1024:
            raise ConfigError(f"{spot}.reason must be text of at most 1024 characters")
        breaks.append(BreakSpec(_clock_s(item["at"], f"{spot}.at"),
                                round(_number(item["minutes"], f"{spot}.minutes", 1, 600) * 60), reason))
    return AgentGroup(count, tuple(skills), shift, tuple(breaks),
                      int(_number(table.get("break_waves", 3), f"{where}.break_waves", 1, 100)),
                      round(_number(table.get("break_stagger_minutes", 15),
                                    f"{where}.break_stagger_minutes", 0, 240) * 60))


def parse_scenario(text: str, where: str = "scenario") -> Scenario:
    """Parse and validate a TOML scenario; errors name the offending key."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from exc
    _keys(table, where, {"tenant"}, {"tenant"})
    tenants = []
    for i, item in enumerate(table["tenant"]):
        spot = f"{where}: tenant[{i}]"
        _keys(item, spot, {"name", "repeat_caller_share", "queue", "agents"}, {"name", "queue"})
        name = _name(item["name"], f"{spot}.name")
        queues = tuple(_queue(q, f"{spot} ({name}).queue[{j}]") for j, q in enumerate(item["queue"]))
        names = {q.name for q in queues}
        if len(names) != len(queues):
            raise ConfigError(f"{spot} ({name}) lists a queue twice")
        for q in queues:
            if q.transfer.share and q.transfer.kind == "queue" and q.transfer.to not in names:
                raise ConfigError(f"{spot} ({name}): queue {q.name} transfers to {q.transfer.to!r}, "
                                  "which is not a queue of the tenant")
        groups = tuple(_agents(g, f"{spot} ({name}).agents[{j}]", names)
                       for j, g in enumerate(item.get("agents", [])))
        tenants.append(TenantSpec(name, queues, groups, _number(
            item.get("repeat_caller_share", 0.15), f"{spot}.repeat_caller_share", 0.0, 1.0)))
    if len({t.name for t in tenants}) != len(tenants):
        raise ConfigError(f"{where} lists a tenant twice")
    return Scenario(tuple(tenants))


def load_scenario(path: str) -> Scenario:
    """Read a scenario file (TOML)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read scenario {path}: {exc.strerror}") from exc
    return parse_scenario(text, str(path))


def default_scenario() -> Scenario:
    return parse_scenario(DEFAULT_SCENARIO_TOML, "built-in scenario")


def stationary_scenario(arrivals_per_hour: float, aht_s: float, agents: int,
                        patience_s: float | None = None, service: str = "exponential",
                        cv: float = 1.0) -> Scenario:
    """One queue with a constant arrival rate, talk time only (mean ``aht_s``), ``agents``
    logged in for the whole run without breaks; exponential patience when given."""
    patience = DurationSpec() if patience_s is None else DurationSpec("exponential", patience_s)
    queue = QueueSpec("main", arrivals_per_hour * 24, flat_profile(),
                      DurationSpec(service, aht_s, cv), patience=patience)
    return Scenario((TenantSpec("sim", (queue,), (AgentGroup(agents, ("main",)),)),))
