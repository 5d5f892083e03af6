"""Hand-written SVG for the report's charts: scales, axes with ticks, line paths, points.

Everything is inline markup; the report loads nothing from anywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from typing import Iterable, Sequence

__all__ = ["Frame", "nice_max", "time_ticks", "line_path", "attr"]

WIDTH = 960
HEIGHT = 220
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 26, 30


def attr(value: object) -> str:
    """A value made safe for an attribute or text node."""
    return escape(str(value), quote=True)


def nice_max(value: float, floor: float) -> float:
    """A round upper end for an axis showing values up to ``value`` (at least ``floor``)."""
    value = max(value, floor)
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def time_ticks(start: datetime, end: datetime) -> list[datetime]:
    """Wall-clock tick times between two local times: hours for a day or two, whole days
    for up to a fortnight, then weeks (Mondays) and, for long periods, months."""
    days = (end - start).total_seconds() / 86_400
    if days <= 2:
        step_h = 3 if days <= 1 else 6
        first = start.replace(minute=0, second=0, microsecond=0)
        ticks, t = [], first
        while t < end:
            if t >= start and t.hour % step_h == 0:
                ticks.append(t)
            # Step in wall-clock hours so a DST change day keeps its labels on the hour.
            t = (t.replace(tzinfo=None) + timedelta(hours=1)).replace(tzinfo=start.tzinfo)
        return ticks
    midnights, day = [], start.replace(hour=0, minute=0, second=0, microsecond=0)
    while day < end:
        if day >= start:
            midnights.append(day)
        day = (day.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=start.tzinfo)
    if days <= 15:
        return midnights
    if days <= 120:
        return [d for d in midnights if d.weekday() == 0]
    return [d for d in midnights if d.day == 1]


def tick_label(t: datetime, span_days: float) -> str:
    return t.strftime("%H:%M") if span_days <= 2 else t.strftime("%a %d %b" if span_days <= 15
                                                                 else "%d %b")


@dataclass(frozen=True)
class Frame:
    """One chart's drawing area: time on x (``start_ms`` .. ``end_ms``), ``y_min`` ..
    ``y_max`` on y (values outside are drawn at the edge)."""

    start_ms: int
    end_ms: int
    y_max: float
    y_min: float = 0.0
    width: int = WIDTH
    height: int = HEIGHT

    def x(self, time_ms: float) -> float:
        span = max(self.end_ms - self.start_ms, 1)
        return LEFT + (time_ms - self.start_ms) / span * (self.width - LEFT - RIGHT)

    def y(self, value: float) -> float:
        top = self.height - BOTTOM
        clamped = min(max(value, self.y_min), self.y_max)
        return top - (clamped - self.y_min) / (self.y_max - self.y_min) * (top - TOP)

    def open(self, chart: str, title: str, y_format: str, x_ticks: Sequence[datetime],
             span_days: float) -> list[str]:
        """The ``<svg>`` start, title, grid, y ticks (5 steps) and x ticks."""
        parts = [f'<svg class="chart" data-chart="{attr(chart)}" viewBox="0 0 {self.width} '
                 f'{self.height}" width="{self.width}" height="{self.height}" role="img" '
                 f'xmlns="http://www.w3.org/2000/svg">',
                 f'<title>{attr(title)}</title>',
                 f'<text class="chart-title" x="{LEFT}" y="16">{attr(title)}</text>']
        for i in range(6):
            value = self.y_min + (self.y_max - self.y_min) * i / 5
            y = self.y(value)
            parts.append(f'<line class="grid" x1="{LEFT}" x2="{self.width - RIGHT}" '
                         f'y1="{y:.1f}" y2="{y:.1f}"/>')
            parts.append(f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" '
                         f'text-anchor="end">{attr(format(value, y_format))}</text>')
        bottom = self.height - BOTTOM
        for t in x_ticks:
            x = self.x(t.timestamp() * 1000)
            parts.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" '
                         f'y2="{bottom}"/>')
            parts.append(f'<text class="tick" x="{x:.1f}" y="{bottom + 16}" '
                         f'text-anchor="middle">{attr(tick_label(t, span_days))}</text>')
        return parts


def line_path(frame: Frame, points: Iterable[tuple[int, float | None]], gap_ms: int) -> str:
    """Path data through ``(time_ms, value)`` points; a null value, or more than ``gap_ms``
    between two points (intervals without calls have no record), starts a new segment."""
    parts: list[str] = []
    last_ms: int | None = None
    for time_ms, value in points:
        if value is None:
            last_ms = None
            continue
        command = "L" if last_ms is not None and time_ms - last_ms <= gap_ms else "M"
        parts.append(f"{command}{frame.x(time_ms):.1f},{frame.y(value):.1f}")
        last_ms = time_ms
    return " ".join(parts)
