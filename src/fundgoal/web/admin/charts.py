"""Server-rendered charts: plain geometry for SVG templates (no chart library, no script)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ...money import format_money
from ...stores.donations import PeriodTotal

WIDTH, HEIGHT = 720, 240
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 88, 16, 16, 32
SOURCE_COLOURS = ("#0b6e4f", "#2563eb", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#4b5563")


@dataclass(frozen=True)
class LineChart:
    points: str  # the polyline's "x,y x,y …"
    area: str  # the same, closed along the baseline
    y_ticks: list[tuple[float, str]]
    x_labels: list[tuple[float, str]]
    goal_y: float | None
    goal_label: str
    width: int = WIDTH
    height: int = HEIGHT
    left: int = PAD_LEFT
    right: int = WIDTH - PAD_RIGHT
    top: int = PAD_TOP
    bottom: int = HEIGHT - PAD_BOTTOM


def raised_over_time(
    totals: list[PeriodTotal], goal: int, currency: str, locale: str = "en"
) -> LineChart | None:
    """Cumulative raised at the end of each period, with the goal as a dashed line."""
    per_period: dict[date, int] = {}
    for t in totals:
        per_period[t.period] = per_period.get(t.period, 0) + t.amount
    if not per_period:
        return None
    periods = sorted(per_period)
    running, cumulative = 0, []
    for p in periods:
        running += per_period[p]
        cumulative.append(running)
    top_value = max(cumulative[-1], goal, 1)
    inner_w = WIDTH - PAD_LEFT - PAD_RIGHT
    inner_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    bottom = HEIGHT - PAD_BOTTOM

    def x(i: int) -> float:
        return PAD_LEFT + (inner_w * i / (len(periods) - 1) if len(periods) > 1 else inner_w / 2)

    def y(v: int) -> float:
        return round(bottom - inner_h * v / top_value, 1)

    coords = [(round(x(i), 1), y(v)) for i, v in enumerate(cumulative)]
    points = " ".join(f"{a},{b}" for a, b in coords)
    area = f"{coords[0][0]},{bottom} {points} {coords[-1][0]},{bottom}"
    ticks = [(y(v), format_money(v, currency, locale)) for v in (0, top_value // 2, top_value)]
    labels = [(coords[0][0], periods[0].isoformat())]
    if len(periods) > 1:
        labels.append((coords[-1][0], periods[-1].isoformat()))
    return LineChart(
        points=points,
        area=area,
        y_ticks=ticks,
        x_labels=labels,
        goal_y=y(goal) if goal else None,
        goal_label=format_money(goal, currency, locale),
    )


@dataclass(frozen=True)
class SourceBar:
    source: str
    amount: str
    gifts: int
    y: float
    width: float
    colour: str


def by_source(totals: list[PeriodTotal], currency: str, locale: str = "en") -> list[SourceBar]:
    sums: dict[str, tuple[int, int]] = {}
    for t in totals:
        amount, gifts = sums.get(t.source, (0, 0))
        sums[t.source] = (amount + t.amount, gifts + t.gifts)
    if not sums:
        return []
    biggest = max(a for a, _ in sums.values()) or 1
    ordered = sorted(sums.items(), key=lambda kv: -kv[1][0])
    return [
        SourceBar(
            source=source,
            amount=format_money(amount, currency, locale),
            gifts=gifts,
            y=i * 32.0,
            width=round(420 * amount / biggest, 1),
            colour=SOURCE_COLOURS[i % len(SOURCE_COLOURS)],
        )
        for i, (source, (amount, gifts)) in enumerate(ordered)
    ]


@dataclass(frozen=True)
class PeriodRow:
    period: date
    cells: list[str]  # one per source, formatted
    total: str
    gifts: int


def period_table(
    totals: list[PeriodTotal], currency: str, locale: str = "en"
) -> tuple[list[str], list[PeriodRow]]:
    sources = sorted({t.source for t in totals})
    grid: dict[date, dict[str, PeriodTotal]] = {}
    for t in totals:
        grid.setdefault(t.period, {})[t.source] = t
    rows = []
    for period in sorted(grid, reverse=True):
        cells = grid[period]
        rows.append(
            PeriodRow(
                period=period,
                cells=[
                    format_money(cells[s].amount, currency, locale) if s in cells else ""
                    for s in sources
                ],
                total=format_money(sum(c.amount for c in cells.values()), currency, locale),
                gifts=sum(c.gifts for c in cells.values()),
            )
        )
    return sources, rows
