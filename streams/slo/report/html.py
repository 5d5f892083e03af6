"""The report's HTML page: one self-contained file with a summary table per tenant and, per
queue, its figures, charts (inline SVG) and worst intervals. Nothing is loaded from outside."""

from __future__ import annotations

from typing import Any, Sequence

from streams import __version__
from streams.slo.report.charts import queue_charts
from streams.slo.report.load import Period
from streams.slo.report.summary import GroupReport
from streams.slo.report.svg import attr

__all__ = ["render_html"]

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1000px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 36px; } h3 { font-size: 16px; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.miss { color: #b3261e; } .met { color: #1b7a35; }
svg.chart { display: block; margin: 10px 0 18px; background: #fcfcfc; }
svg .chart-title { font-size: 13px; font-weight: 600; fill: #333; }
svg .tick, svg .note { font-size: 11px; fill: #666; }
svg .grid { stroke: #e4e4e4; stroke-width: 1; }
svg .target-line { stroke: #1f5fbf; stroke-width: 1.5; fill: none; stroke-dasharray: 6 3; }
svg .sl-point.met { fill: #1b7a35; } svg .sl-point.miss { fill: #c62828; }
svg .series { fill: none; stroke: #6a3fb5; stroke-width: 1.3; }
svg .series.budget-remaining { stroke: #c25e00; stroke-width: 2; }
svg .ideal { stroke: #999; stroke-dasharray: 4 4; fill: none; }
svg .zero-line { stroke: #444; }
.small { color: #666; font-size: 12px; }
"""


def _pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f} %"


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _met(value: bool | None) -> str:
    return {None: "", True: ' class="met"', False: ' class="miss"'}[value]


_SUMMARY_HEAD = ("<tr><th>queue</th><th>intervals</th><th>offered</th><th>service level</th>"
                 "<th>target</th><th>intervals meeting target</th><th>budget consumed</th>"
                 "<th>abandon rate</th><th>ASA s</th><th>AHT s</th><th>transfer rate</th>"
                 "<th>first-contact resolution</th><th>disposition coverage</th></tr>")


def _summary_row(name: str, s: dict[str, Any], bold: bool = False) -> str:
    sl = s["service_level"]
    cell = "th" if bold else "td"
    cells = [attr(name), str(s["intervals"]), str(s["totals"]["offered"]),
             f'<span{_met(sl["met"])}>{_pct(sl["value"])}</span>', _pct(sl["target"]),
             _pct(s["timeslices"]["share_meeting_target"]),
             _pct(s["error_budget"]["consumed"], 0), _pct(s["abandon_rate"]),
             _num(s["asa_s"]), _num(s["aht_s"], 0), _pct(s["quality"]["transfer_rate"]["value"]),
             _pct(s["quality"]["first_contact_resolution"]["value"]),
             _pct(s["quality"]["disposition_coverage"]["value"])]
    return "<tr>" + "".join(f"<{cell}>{c}</{cell}>" for c in cells) + "</tr>"


def _worst_table(worst: Sequence[dict[str, Any]]) -> str:
    if not worst:
        return '<p class="small">No interval missed its target.</p>'
    rows = "".join(
        f"<tr><td>{attr(w['interval_start'])}</td><td>{_pct(w['service_level'])}</td>"
        f"<td>{_pct(w['sl_target'], 0)}</td><td>{w['bad']}</td><td>{w['offered']}</td>"
        f"<td>{_pct(w['abandon_rate'])}</td><td>{_num(w['asa_s'])}</td></tr>" for w in worst)
    return ('<table class="worst"><tr><th>interval start</th><th>service level</th>'
            "<th>target</th><th>calls outside objective</th><th>offered</th>"
            f"<th>abandon rate</th><th>ASA s</th></tr>{rows}</table>")


def _days_table(days: Sequence[dict[str, Any]]) -> str:
    if len(days) < 2:
        return ""
    rows = "".join(
        f"<tr><td>{attr(d['date'])}</td><td>{d['intervals']}</td><td>{d['offered']}</td>"
        f"<td><span{_met(d['met'])}>{_pct(d['service_level'])}</span></td>"
        f"<td>{_pct(d['target'])}</td><td>{_pct(d['abandon_rate'])}</td>"
        f"<td>{_pct(d['transfer_rate'])}</td><td>{_pct(d['first_contact_resolution'])}</td>"
        f"<td>{_pct(d['disposition_coverage'])}</td></tr>" for d in days)
    return ('<h4>Per day</h4><table class="days"><tr><th>day</th><th>intervals</th>'
            "<th>offered</th><th>service level</th><th>target</th><th>abandon rate</th>"
            "<th>transfer rate</th><th>first-contact resolution</th>"
            f"<th>disposition coverage</th></tr>{rows}</table>")


def _queue_section(group: GroupReport, period: Period) -> str:
    s = group.summary
    budget = s["error_budget"]
    policies = ", ".join(f"{_pct(p['sl_target'], 0)} within {p['threshold_s']} s "
                         f"({attr(p['sl_formula'])}, {p['intervals']} intervals)"
                         for p in s["policies"])
    exceeded = (f"; exceeded at {attr(budget['exceeded_at'])}" if budget["exceeded_at"] else "")
    charts = "\n".join(queue_charts(group, period))
    return f"""
<section class="queue" data-tenant="{attr(group.tenant)}" data-queue="{attr(group.queue)}"
         data-intervals="{len(group.records)}">
<h3>{attr(group.tenant)} / {attr(group.queue)}</h3>
<p>Objective: {policies}. Period service level
<b{_met(s['service_level']['met'])}>{_pct(s['service_level']['value'])}</b>
({s['service_level']['good']} of {s['service_level']['denominator']} calls);
{s['timeslices']['intervals_meeting_target']} of
{s['timeslices']['intervals_with_service_level']} intervals met the target.
Error budget: {budget['bad']} bad calls of {_num(budget['allowed_bad'])} allowed
({_pct(budget['consumed'], 0)} consumed{exceeded}).</p>
{charts}
{_days_table(s['days'])}
<h4>Worst intervals</h4>
{_worst_table(s['worst_intervals'])}
</section>"""


def render_html(report: dict[str, Any], groups: Sequence[GroupReport], period: Period,
                source: str) -> str:
    """The whole page for :func:`~streams.slo.report.summary.build_report`'s output."""
    counts = report["input"]
    sections = []
    for tenant, summary in report["tenants"].items():
        rows = [_summary_row(queue, s) for queue, s in summary["queues"].items()]
        rows.append(_summary_row("all queues", summary, bold=True))
        queues = "".join(_queue_section(g, period) for g in groups if g.tenant == tenant)
        sections.append(f'<section class="tenant" data-tenant="{attr(tenant)}">'
                        f"<h2>Tenant {attr(tenant)}</h2>"
                        f'<table class="summary">{_SUMMARY_HEAD}{"".join(rows)}</table>'
                        f"{queues}</section>")
    title = (f"SLA report {period.first_day} to {period.last_day} ({period.tz_name})")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{attr(title)}</title>
<style>{_STYLE}</style></head>
<body>
<h1>{attr(title)}</h1>
<p class="small">Source: {attr(source)}. {counts['read']} records read, {counts['kept']} intervals
in the report; {counts['duplicates']} repeated records dropped (the last one of an interval is
kept), {counts['outside_period']} outside the period, {counts['other_tenants']} of other
tenants. Service levels of a period are computed from the summed counts, not averaged.
Intervals are placed by their start time. callslo {attr(__version__)}.</p>
{"".join(sections)}
</body></html>
"""
