"""The report's five charts for one queue, as inline SVG: service level per interval against
the target, abandon rate, ASA, a weekday x time-of-day heat map of service level, and the
error-budget burn-down."""

from __future__ import annotations


from streams.slo.report.load import Period
from streams.slo.report.summary import GroupReport, HeatMap
from streams.slo.report.svg import Frame, attr, line_path, nice_max, time_ticks

__all__ = ["queue_charts"]

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f} %"


class _Axes:
    """Shared x axis of a queue's time charts: the whole period in its zone."""

    def __init__(self, period: Period, gap_ms: int) -> None:
        self.period = period
        self.gap_ms = gap_ms
        start = period.local(period.start_ms)
        end = period.local(period.end_ms)
        self.ticks = time_ticks(start, end)
        self.span_days = (period.end_ms - period.start_ms) / 86_400_000

    def frame(self, y_max: float) -> Frame:
        return Frame(self.period.start_ms, self.period.end_ms, y_max)

    def when(self, time_ms: int) -> str:
        return self.period.local(time_ms).strftime("%a %Y-%m-%d %H:%M")


def _service_level(group: GroupReport, axes: _Axes) -> str:
    frame = axes.frame(1.0)
    parts = frame.open("service-level", "Service level per interval and target", ".0%",
                       axes.ticks, axes.span_days)
    # The target as a step line: it can change between intervals with the queue rules.
    steps = []
    for r in group.records:
        y = frame.y(r["sl_target"])
        steps.append(f"{'M' if not steps else 'L'}{frame.x(r['interval_start_ms']):.1f},{y:.1f}"
                     f" L{frame.x(r['interval_end_ms']):.1f},{y:.1f}")
    parts.append(f'<path class="target-line" d="{" ".join(steps)}"/>')
    for r in group.records:
        if r["service_level"] is None:
            continue
        mid_ms = (r["interval_start_ms"] + r["interval_end_ms"]) / 2
        state = "met" if r["sl_met"] else "miss"
        parts.append(f'<circle class="sl-point {state}" cx="{frame.x(mid_ms):.1f}" '
                     f'cy="{frame.y(r["service_level"]):.1f}" r="2" '
                     f'data-start-ms="{r["interval_start_ms"]}"><title>'
                     f'{attr(axes.when(r["interval_start_ms"]))}: {_pct(r["service_level"])} '
                     f'of {r["offered"]} offered (target {_pct(r["sl_target"], 0)})'
                     f'</title></circle>')
    parts.append("</svg>")
    return "\n".join(parts)


def _series(group: GroupReport, axes: _Axes, chart: str, title: str, field: str,
            y_max: float, y_format: str) -> str:
    frame = axes.frame(y_max)
    parts = frame.open(chart, title, y_format, axes.ticks, axes.span_days)
    points = [(r["interval_start_ms"], r[field]) for r in group.records]
    shown = sum(1 for _, v in points if v is not None)
    parts.append(f'<path class="series {attr(chart)}" data-points="{shown}" '
                 f'd="{line_path(frame, points, axes.gap_ms)}"/>')
    parts.append("</svg>")
    return "\n".join(parts)


def _burn_down(group: GroupReport, axes: _Axes) -> str:
    budget = group.summary["error_budget"]
    lowest = min((remaining for _, remaining in group.burn_down), default=0.0)
    # Overspending goes below 0; the axis follows it down so the whole line stays visible.
    y_min = 0.0 if lowest >= 0 else -nice_max(-lowest, 0.1)
    frame = Frame(axes.period.start_ms, axes.period.end_ms, 1.0, y_min)
    parts = frame.open("budget", "Error budget remaining (share of the period's allowed bad "
                       "calls; below 0 %: overspent)", ".0%", axes.ticks, axes.span_days)
    if budget["allowed_bad"] <= 0:
        parts.append(f'<text class="note" x="{frame.width / 2}" y="{frame.height / 2}" '
                     'text-anchor="middle">no error budget: target 100 % or no calls</text>')
        parts.append("</svg>")
        return "\n".join(parts)
    start_x, end_x = frame.x(axes.period.start_ms), frame.x(axes.period.end_ms)
    zero_y = frame.y(0.0)
    parts.append(f'<line class="zero-line" x1="{start_x:.1f}" x2="{end_x:.1f}" '
                 f'y1="{zero_y:.1f}" y2="{zero_y:.1f}"/>')
    # Even spending over the period's time, for comparison.
    parts.append(f'<path class="ideal" d="M{start_x:.1f},{frame.y(1.0):.1f} '
                 f'L{end_x:.1f},{zero_y:.1f}"/>')
    points = [(axes.period.start_ms, 1.0)] + group.burn_down
    d = " ".join(f"{'M' if i == 0 else 'L'}{frame.x(t):.1f},{frame.y(v):.1f}"
                 for i, (t, v) in enumerate(points))
    parts.append(f'<path class="series budget-remaining" data-points="{len(group.burn_down)}" '
                 f'd="{d}"/>')
    parts.append("</svg>")
    return "\n".join(parts)


def _heat_colour(sl: float, target: float) -> str:
    """Green at or above the target, through yellow, to red 30 points below it."""
    share = min(max((sl - (target - 0.3)) / 0.3, 0.0), 1.0) if target > 0 else 1.0
    return f"hsl({120 * share:.0f}, 70%, {45 + 10 * (1 - share):.0f}%)"


def _heat_map(heat: HeatMap, target: float | None, period: Period) -> str:
    slots = heat.slots_per_day
    left, top, width, height = 44, 26, 960, 26 + 7 * 22 + 30
    cell_w = (width - left - 16) / slots
    parts = [f'<svg class="chart" data-chart="heat-map" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img" xmlns="http://www.w3.org/2000/svg">',
             "<title>Service level by weekday and time of day</title>",
             f'<text class="chart-title" x="{left}" y="16">Service level by weekday and time '
             f'of day ({attr(period.tz_name)}, {heat.slot_minutes}-minute slots, from counts)'
             "</text>"]
    for weekday, name in enumerate(_WEEKDAYS):
        y = top + weekday * 22
        parts.append(f'<text class="tick" x="{left - 6}" y="{y + 15}" '
                     f'text-anchor="end">{name}</text>')
        for slot in range(slots):
            sl = heat.service_level(weekday, slot)
            good, denominator = heat.cells.get((weekday, slot), (0, 0))
            minute = slot * heat.slot_minutes
            label = f"{name} {minute // 60:02d}:{minute % 60:02d}"
            if sl is None:
                fill, css, text = "#eee", "heat-cell empty", f"{label}: no calls"
            else:
                fill = _heat_colour(sl, 0.8 if target is None else target)
                css, text = "heat-cell", f"{label}: {_pct(sl)} ({good} of {denominator})"
            parts.append(f'<rect class="{css}" data-weekday="{weekday}" data-slot="{slot}" '
                         f'x="{left + slot * cell_w:.2f}" y="{y}" width="{cell_w:.2f}" '
                         f'height="20" fill="{fill}"><title>{attr(text)}</title></rect>')
    step = max(1, slots // 8)
    for slot in range(0, slots, step):
        minute = slot * heat.slot_minutes
        parts.append(f'<text class="tick" x="{left + slot * cell_w:.1f}" y="{top + 7 * 22 + 14}"'
                     f'>{minute // 60:02d}:{minute % 60:02d}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def queue_charts(group: GroupReport, period: Period) -> list[str]:
    """The five charts of one queue, in the order the report shows them."""
    lengths = [r["interval_end_ms"] - r["interval_start_ms"] for r in group.records]
    axes = _Axes(period, gap_ms=min(lengths, default=900_000))
    max_abandon = max((r["abandon_rate"] or 0.0 for r in group.records), default=0.0)
    max_asa_s = max((r["asa_s"] or 0.0 for r in group.records), default=0.0)
    target = group.summary["service_level"]["target"]
    return [
        _service_level(group, axes),
        _series(group, axes, "abandon-rate", "Abandon rate per interval", "abandon_rate",
                nice_max(max_abandon, 0.05), ".0%"),
        _series(group, axes, "asa", "Average speed of answer per interval (s)", "asa_s",
                nice_max(max_asa_s, 10.0), ".0f"),
        _heat_map(group.heat_map, target, period),
        _burn_down(group, axes),
    ]
