"""The ops page's 24-hour chart, drawn as inline SVG paths on the server: no script, no CDN.

Top panel: automated decisions per minute. Bottom panel: the share of them that were held,
as a step per quarter hour (per minute it would be noise at low traffic), broken where
nothing was decided.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from moderation.ops.metrics import MinuteCounts

WIDTH, LEFT, RIGHT = 960, 48, 12
TOP_Y, TOP_HEIGHT = 10, 140
RATE_Y, RATE_HEIGHT = 180, 70
AXIS_Y = RATE_Y + RATE_HEIGHT + 16
HEIGHT = AXIS_Y + 6
RATE_BIN_MINUTES = 15
TICK_EVERY_MINUTES = 180


@dataclass(frozen=True)
class Tick:
    """A labelled position on an axis."""

    at: float
    label: str


@dataclass(frozen=True)
class DecisionChart:
    """Everything the template needs to draw the chart."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    decisions_area: str
    hold_rate_line: str
    decision_ticks: list[Tick]
    rate_ticks: list[Tick]
    time_ticks: list[Tick]
    total: int
    held: int
    peak: int

    @property
    def hold_rate(self) -> float | None:
        """Held share of the whole day."""
        return self.held / self.total if self.total else None


def decision_chart(minutes: Sequence[MinuteCounts]) -> DecisionChart:
    """Lay out one point per minute, oldest on the left."""
    totals = [minute.total for minute in minutes]
    peak = max(totals, default=0)
    top = _nice_ceiling(peak)
    return DecisionChart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right=WIDTH - RIGHT,
        top=TOP_Y,
        bottom=RATE_Y + RATE_HEIGHT,
        decisions_area=_area(totals, top),
        hold_rate_line=_rate_line(minutes),
        decision_ticks=[Tick(_y(value, top, TOP_Y, TOP_HEIGHT), str(value)) for value in (0, top)],
        rate_ticks=[
            Tick(_y(share, 1.0, RATE_Y, RATE_HEIGHT), f"{share:.0%}") for share in (0, 0.5, 1)
        ],
        time_ticks=_time_ticks(minutes),
        total=sum(totals),
        held=sum(minute.counts.get("held", 0) for minute in minutes),
        peak=peak,
    )


def _x(index: float, count: int) -> float:
    return LEFT + (WIDTH - LEFT - RIGHT) * index / max(1, count - 1)


def _y(value: float, top: float, panel_y: int, panel_height: int) -> float:
    return panel_y + panel_height * (1 - value / top)


def _area(totals: Sequence[int], top: int) -> str:
    if not totals:
        return ""
    base = TOP_Y + TOP_HEIGHT
    points = [
        f"{_x(i, len(totals)):.1f},{_y(v, top, TOP_Y, TOP_HEIGHT):.1f}"
        for i, v in enumerate(totals)
    ]
    return (
        f"M{_x(0, len(totals)):.1f},{base} L"
        + " L".join(points)
        + f" L{_x(len(totals) - 1, len(totals)):.1f},{base} Z"
    )


def _rate_line(minutes: Sequence[MinuteCounts]) -> str:
    """Held share per bin as a step across the bin; a bin without decisions breaks the line."""
    segments, moving = [], False
    for start in range(0, len(minutes), RATE_BIN_MINUTES):
        chunk = minutes[start : start + RATE_BIN_MINUTES]
        total = sum(minute.total for minute in chunk)
        if not total:
            moving = False
            continue
        share = sum(minute.counts.get("held", 0) for minute in chunk) / total
        y = _y(share, 1.0, RATE_Y, RATE_HEIGHT)
        left, right = _x(start, len(minutes)), _x(start + len(chunk) - 1, len(minutes))
        segments.append(f"{'L' if moving else 'M'}{left:.1f},{y:.1f} L{right:.1f},{y:.1f}")
        moving = True
    return " ".join(segments)


def _time_ticks(minutes: Sequence[MinuteCounts]) -> list[Tick]:
    return [
        Tick(_x(i, len(minutes)), datetime.fromtimestamp(minute.minute * 60, UTC).strftime("%H:%M"))
        for i, minute in enumerate(minutes)
        if minute.minute % TICK_EVERY_MINUTES == 0
    ]


def _nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5 x 10^k at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value)
