"""The SLO evaluator of one partition: interval and realtime records in; alerts, staffing and
error-budget records out. Pure: no Kafka, no clock of its own (callers pass ``now_ms``), so every
rule is testable by feeding records.

State per queue: the final interval records of the longest window any objective or forecast
needs (deduplicated by interval start), the seasonal forecast, the staffed-agents meter and
the alert machine. :mod:`streams.agents.slo` rebuilds it on start from the topics (docs/slo.md).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Mapping

from streams.slo.alerts import AlertMachine, Rule
from streams.slo.burn import (DAY_MS, burn_rate, compliance_days, compliance_span, rule_windows,
                              scaled_rules, window_sum)
from streams.slo.forecast import SeasonalForecast
from streams.slo.indicators import NOT_IN_RECORDS, objective_target, quality, terms
from streams.slo.objectives import Objective, SloSettings
from streams.slo.staffing import Patience, StaffedMeter, patience, staffing_record

__all__ = ["Output", "SloEvaluator", "BUDGET_SCHEMA"]

BUDGET_SCHEMA = "slo.error-budget.v1"
#: Fields of an interval record the evaluator keeps (the rest is not needed for any rule).
_KEPT = ("tenant", "queue", "interval_start_ms", "interval_end_ms", "threshold_s", "sl_formula",
         "sl_target", "entered", "offered", "answered", "abandoned", "answered_within",
         "abandoned_within", "handled", "transferred", "wait_unknown", "asa_s", "aht_s",
         "service_level", "abandoned_wait_s", "resolved_calls", "unresolved_calls", "dispositioned")


@dataclass(frozen=True)
class Output:
    """A record to publish: ``role`` is "alerts", "staffing" or "budget"; key ``tenant/queue``."""

    role: str
    key: str
    value: dict[str, Any]


class SloEvaluator:
    """Evaluates the queues of one partition (see the module docstring)."""

    def __init__(self, slo: SloSettings, interval_s: int) -> None:
        self.slo = slo
        self.interval_s = interval_s
        self.interval_ms = interval_s * 1000
        self.history: dict[tuple[str, str], dict[int, dict[str, Any]]] = defaultdict(dict)
        self.forecast = SeasonalForecast(interval_s, slo.forecast_weeks, slo.forecast_ewma_alpha)
        self.meter = StaffedMeter(interval_s)
        self.alerts = AlertMachine()
        #: The realtime rules by service-level target (the only per-queue part of them).
        self._realtime_rules: dict[float, tuple[Rule, ...]] = {}
        self._required_now: dict[tuple[str, str], tuple[int, int | None]] = {}
        self.duplicates = 0
        #: First-contact-resolution counts that came before their interval record.
        self._fcr_early: dict[tuple[tuple[str, str], int], dict[str, int]] = {}

    # -- interval records --------------------------------------------------------------------

    def on_interval(self, record: Mapping[str, Any], now_ms: int, quiet: bool = False
                    ) -> list[Output]:
        """A final interval record. A repeat of a known interval changes nothing. ``quiet``
        (rebuilding from the topic at start) learns the record without publishing anything."""
        key = (record["tenant"], record["queue"])
        start = record["interval_start_ms"]
        queue_history = self.history[key]
        if start in queue_history:
            self.duplicates += 1
            return []
        slim = {name: record.get(name) for name in _KEPT}
        slim.update(self._fcr_early.pop((key, start), {}))
        queue_history[start] = slim
        self.forecast.add(slim)
        self._trim(key, start)
        end = record["interval_end_ms"]
        # Older records are history (a new group reading the topic from its start): learned,
        # nothing published, so a first start does not flood the output topics or page.
        if quiet or now_ms - end > self.slo.alerts.stale_after_s * 1000 + self.interval_ms:
            return []
        return self._staffing(key, slim) + self._budgets(key, end)

    def on_fcr(self, record: Mapping[str, Any], now_ms: int, quiet: bool = False
               ) -> list[Output]:
        """A first-contact-resolution record (``slo.queue-fcr.v1``): its counts join the
        interval's; the budgets of the queue's FCR objectives are evaluated again, since the
        counts come a window (``fcr_window_s``) after the interval record."""
        key = (record["tenant"], record["queue"])
        start = record["interval_start_ms"]
        counts = {"resolved_calls": record["resolved_calls"],
                  "unresolved_calls": record["unresolved_calls"]}
        interval = self.history[key].get(start)
        if interval is None:
            if not self.history[key]:
                del self.history[key]
            self._fcr_early[(key, start)] = counts
            return []
        interval.update(counts)
        end = record["interval_end_ms"]
        # Final once the window after the interval passed: stale only some time after that.
        due_ms = end + record["fcr_window_s"] * 1000
        if quiet or now_ms - due_ms > self.slo.alerts.stale_after_s * 1000 + self.interval_ms:
            return []
        return self._budgets(key, end, indicator="first_contact_resolution")

    def _trim(self, key: tuple[str, str], start: int) -> None:
        keep_from = start - (self.slo.longest_window_days + 7) * DAY_MS
        for early in [e for e in self._fcr_early if e[0] == key and e[1] < keep_from]:
            del self._fcr_early[early]
        history = self.history[key]
        if min(history) < keep_from:
            for old in [s for s in history if s < keep_from]:
                del history[old]
            self.forecast.trim(keep_from)

    def patience(self, key: tuple[str, str], end_ms: int) -> Patience:
        since = end_ms - self.slo.patience_days * DAY_MS
        return patience([r for s, r in self.history[key].items() if s >= since])

    def _staffing(self, key: tuple[str, str], record: dict[str, Any]) -> list[Output]:
        tenant, queue = key
        start, end = record["interval_start_ms"], record["interval_end_ms"]
        staffed, coverage = self.meter.take(tenant, queue, start)
        patience_ = self.patience(key, end)
        handle_s = (record["aht_s"] or 0.0) * record["handled"]
        closed = staffing_record(
            tenant=tenant, queue=queue, interval_start_ms=start, interval_s=self.interval_s,
            kind="closed", arrivals=record["entered"], aht_s=record["aht_s"],
            threshold_s=record["threshold_s"], sl_target=record["sl_target"],
            patience_=patience_, staffed=staffed, staffed_coverage=coverage, handle_s=handle_s,
            forecast_method=None,
            quality={"interval": quality(record), "day": quality(self._day_sums(key, start))})
        expected = self.forecast.expected(tenant, queue, end)
        now_staffed = self.meter.current(tenant, queue)
        following = staffing_record(
            tenant=tenant, queue=queue, interval_start_ms=end, interval_s=self.interval_s,
            kind="next", arrivals=expected.arrivals, aht_s=expected.aht_s,
            threshold_s=record["threshold_s"], sl_target=record["sl_target"],
            patience_=patience_, staffed=None if now_staffed is None else float(now_staffed),
            staffed_coverage=None, handle_s=None, forecast_method=expected.method)
        self._required_now[key] = (end, following["required"])
        return [Output("staffing", f"{tenant}/{queue}", closed),
                Output("staffing", f"{tenant}/{queue}", following)]

    def _day_sums(self, key: tuple[str, str], start: int) -> dict[str, Any]:
        """The quality counts of the UTC day of ``start`` so far; a field missing from any
        record of the day is missing from the sum."""
        day = start - start % DAY_MS
        records = [r for s, r in self.history[key].items() if day <= s <= start]
        sums: dict[str, Any] = {}
        for name in ("offered", "abandoned", "handled", "transferred", "resolved_calls",
                     "unresolved_calls", "dispositioned"):
            values = [r[name] for r in records]
            sums[name] = None if any(v is None for v in values) else sum(values)
        sums["sl_formula"] = records[-1]["sl_formula"]
        return sums

    def _budgets(self, key: tuple[str, str], end_ms: int, indicator: str | None = None
                 ) -> list[Output]:
        tenant, queue = key
        out = []
        for name, objective in sorted(self.slo.objectives(tenant, queue).items()):
            if indicator is not None and objective.indicator != indicator:
                continue
            if indicator is None and objective.indicator == "first_contact_resolution":
                # Its counts come a window after the interval (on_fcr): judged then, in the
                # order of its own intervals, so its alerts never see time run backwards.
                continue
            record, alerts = self._budget(key, name, objective, end_ms)
            out.append(Output("budget", f"{tenant}/{queue}", record))
            out += [Output("alerts", f"{tenant}/{queue}", a) for a in alerts]
        return out

    def _budget(self, key: tuple[str, str], name: str, objective: Objective, end_ms: int
                ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        tenant, queue = key
        start_ms, window_end_ms = compliance_span(objective, end_ms)
        days = compliance_days(objective, end_ms)
        rules = scaled_rules(days, self.interval_s)
        longest_rule_ms = int(max(r.long_s for r in rules) * 1000)
        series = []
        missing = False
        for start, record in sorted(self.history[key].items()):
            if start < min(start_ms, end_ms - longest_rule_ms) or start >= end_ms:
                continue
            part = terms(objective, record)
            if part is None:
                missing = True
                continue
            series.append((start, part.bad, part.total, objective_target(objective, record)))
        budget = window_sum(series, start_ms, end_ms)
        value: dict[str, Any] = {
            "schema": BUDGET_SCHEMA, "tenant": tenant, "queue": queue, "objective": name,
            "indicator": objective.indicator, "budgeting": objective.budgeting,
            "target": objective.target or None, "at_ms": end_ms,
            "window": {"kind": objective.window, "start_ms": start_ms, "end_ms": window_end_ms,
                       "days": days},
            "total": budget.total, "bad": budget.bad, "allowed_bad": budget.allowed,
            "remaining_bad": round(budget.allowed - budget.bad, 9),
            "consumed": None if budget.allowed <= 0 else budget.bad / budget.allowed,
            "remaining": None if budget.allowed <= 0 else 1.0 - budget.bad / budget.allowed,
            "burn_rates": {}, "reason": None,
        }
        if missing and not series:
            value.update(total=None, bad=None, allowed_bad=None, remaining_bad=None,
                         reason=NOT_IN_RECORDS)
            return value, []
        alerts = []
        hysteresis = self.slo.alerts.hysteresis
        for rule in rules:
            (long_from, _), (short_from, _) = rule_windows(rule, end_ms)
            long_rate = burn_rate(window_sum(series, long_from, end_ms))
            short_rate = burn_rate(window_sum(series, short_from, end_ms))
            value["burn_rates"][rule.kind] = {"factor": rule.factor, "long_s": rule.long_s,
                                              "short_s": rule.short_s, "long": long_rate,
                                              "short": short_rate}
            both = None if long_rate is None or short_rate is None else min(long_rate, short_rate)
            # Interval evaluations already aggregate a whole interval: fire at once, resolve
            # only after a second clear evaluation one interval later.
            alert_rule = Rule(rule.kind, rule.severity, "above", rule.factor,
                              rule.factor * (1 - hysteresis), 0, self.interval_ms, subject=name)
            change = self.alerts.observe(
                tenant, queue, alert_rule, both, end_ms,
                detail={"long_burn": long_rate, "short_burn": short_rate,
                        "long_s": rule.long_s, "short_s": rule.short_s})
            if change is not None:
                alerts.append(change)
        return value, alerts

    # -- realtime records ---------------------------------------------------------------------

    def on_realtime(self, record: Mapping[str, Any], now_ms: int) -> list[Output]:
        """A realtime snapshot: staffed agents for the meter, and the realtime alert kinds."""
        tenant, queue = record["tenant"], record["queue"]
        at_ms = record["as_of_ms"]
        self.meter.observe(tenant, queue, at_ms, int(record.get("staffed") or 0))
        limits = self.slo.alerts
        quiet = now_ms - at_ms > limits.stale_after_s * 1000
        target = float(record["sl_target"])
        offered_15m = record.get("w15m_offered") or 0
        sl_15m = record.get("w15m_service_level") if offered_15m >= limits.sl_15m_min_offered else None
        # The forecast and the Erlang requirement are the costly part (a worker catching up
        # on a backlog sees thousands of past snapshots); a stale snapshot alerts nobody.
        spike, expected = (None, None) if quiet else self._spike(record)
        shortfall, required = (None, None) if quiet else self._shortfall(record)
        oldest_wait, calls_waiting, sl_rule, spike_rule, staffed_rule = self.realtime_rules(target)
        checks = [
            (oldest_wait, record.get("oldest_wait_s"),
             {"calls_waiting": record.get("calls_waiting")}),
            (calls_waiting, record.get("calls_waiting"),
             {"oldest_wait_s": record.get("oldest_wait_s")}),
            (sl_rule, sl_15m, {"w15m_offered": offered_15m}),
            (spike_rule, spike, {"w15m_entered": record.get("w15m_entered"), "expected": expected}),
            (staffed_rule, shortfall, {"staffed": record.get("staffed"), "required": required}),
        ]
        out = []
        for rule, value, detail in checks:
            change = self.alerts.observe(tenant, queue, rule, value, at_ms, detail, quiet=quiet)
            if change is not None:
                out.append(Output("alerts", f"{tenant}/{queue}", change))
        return out

    def realtime_rules(self, target: float) -> tuple[Rule, ...]:
        """The rules of :meth:`on_realtime` for a queue with service-level ``target``."""
        rules = self._realtime_rules.get(target)
        if rules is None:
            limits = self.slo.alerts
            hold_ms = int(limits.hold_s * 1000)
            h = limits.hysteresis
            rules = self._realtime_rules[target] = (
                Rule("oldest_wait", "page", "above", limits.oldest_wait_s,
                     limits.oldest_wait_s * (1 - h), hold_ms, hold_ms),
                Rule("calls_waiting", "warning", "above", limits.calls_waiting,
                     limits.calls_waiting * (1 - h), hold_ms, hold_ms),
                Rule("service_level_15m", "warning", "below", target, target + h * (1 - target),
                     hold_ms, hold_ms),
                Rule("volume_spike", "warning", "above", limits.volume_spike_ratio,
                     limits.volume_spike_ratio * (1 - h), hold_ms, hold_ms),
                Rule("understaffed", "warning", "above", 1, 1, hold_ms, hold_ms),
            )
        return rules

    def expected_last_15m(self, tenant: str, queue: str, at_ms: int) -> float | None:
        """Expected arrivals over the 15 minutes before ``at_ms``: each interval's forecast
        weighted by its overlap with them."""
        window_from = at_ms - 15 * 60_000
        total = 0.0
        start = window_from - window_from % self.interval_ms
        while start < at_ms:
            overlap = min(at_ms, start + self.interval_ms) - max(window_from, start)
            expected = self.forecast.expected(tenant, queue, start).arrivals
            if expected is None:
                return None
            total += expected * overlap / self.interval_ms
            start += self.interval_ms
        return total

    def _spike(self, record: Mapping[str, Any]) -> tuple[float | None, float | None]:
        arrivals = record.get("w15m_entered")
        expected = self.expected_last_15m(record["tenant"], record["queue"], record["as_of_ms"])
        if arrivals is None or expected is None:
            return None, expected
        if arrivals < self.slo.alerts.volume_spike_min_calls:
            return None, expected
        # At least one call expected: a new queue's first calls are not an infinite spike.
        return arrivals / max(expected, 1.0), expected

    def _shortfall(self, record: Mapping[str, Any]) -> tuple[float | None, int | None]:
        """Required agents of the current interval (by the forecast) minus staffed now."""
        key = (record["tenant"], record["queue"])
        at_ms = record["as_of_ms"]
        start = at_ms - at_ms % self.interval_ms
        cached = self._required_now.get(key)
        if cached is None or cached[0] != start:
            expected = self.forecast.expected(key[0], key[1], start)
            row = staffing_record(
                tenant=key[0], queue=key[1], interval_start_ms=start, interval_s=self.interval_s,
                kind="next", arrivals=expected.arrivals, aht_s=expected.aht_s,
                threshold_s=float(record["threshold_s"]), sl_target=float(record["sl_target"]),
                patience_=self.patience(key, start), staffed=None, staffed_coverage=None,
                handle_s=None, forecast_method=expected.method)
            cached = self._required_now[key] = (start, row["required"])
        required = cached[1]
        staffed = record.get("staffed")
        if required is None or staffed is None:
            return None, required
        return float(required - staffed), required

    def restore_alert(self, record: dict[str, Any]) -> None:
        """An alert read back from the alerts topic at start (see :meth:`AlertMachine.restore`)."""
        self.alerts.restore(record)
