"""Charts drawn on the server as inline SVG: no script, no inline style, nothing fetched.

Colours are SVG presentation attributes (allowed by `style-src 'self'`); sizes scale with the
viewBox, so a chart fits a phone screen as well as a desktop one. Each bar carries a <title> that
a browser shows on hover, and the figures are also in a table next to the chart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

from markupsafe import Markup, escape

PALETTE = ("#1f6feb", "#07c160", "#f59f00", "#d6336c", "#7048e8", "#0ca678", "#868e96")
WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 40, 8, 10, 26


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def stacked_bars(
    days: Sequence[date],
    series: dict[str, list[int]],
    label_of: Callable[[str], str],
    title: str,
) -> Markup:
    """One bar per day, stacked by series."""
    totals = [sum(values[i] for values in series.values()) for i in range(len(days))]
    top = _nice_max(max(totals, default=0))
    slot = (WIDTH - LEFT - RIGHT) / max(len(days), 1)
    parts = _frame(title, top, days, slot, str)
    for position in range(len(days)):
        base = 0
        for index, (name, values) in enumerate(series.items()):
            value = values[position]
            if not value:
                continue
            y_top, y_bottom = _y(base + value, top), _y(base, top)
            parts.append(
                f'<rect x="{LEFT + position * slot + slot * 0.15:.1f}" y="{y_top:.1f}" '
                f'width="{slot * 0.7:.1f}" height="{max(y_bottom - y_top, 0.5):.1f}" '
                f'fill="{colour(index)}"><title>{escape(days[position].isoformat())} · '
                f"{escape(label_of(name))}: {value}</title></rect>"
            )
            base += value
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text part above is escaped


def rate_bars(days: Sequence[date], rates: Sequence[float | None], title: str) -> Markup:
    """A bar per day for a share between 0 and 1; days with no data get no bar."""
    top = max(0.05, _nice_rate(max((r for r in rates if r is not None), default=0.0)))
    slot = (WIDTH - LEFT - RIGHT) / max(len(days), 1)
    parts = _frame(title, top, days, slot, lambda v: f"{v * 100:.0f}%")
    for position, rate in enumerate(rates):
        if rate is None:
            continue
        y_top = _y(rate, top)
        parts.append(
            f'<rect x="{LEFT + position * slot + slot * 0.15:.1f}" y="{y_top:.1f}" '
            f'width="{slot * 0.7:.1f}" height="{max(_y(0, top) - y_top, 0.5):.1f}" '
            f'fill="{PALETTE[3]}"><title>{escape(days[position].isoformat())}: '
            f"{rate * 100:.1f}%</title></rect>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text part above is escaped


def share_bar(share: float, title: str) -> Markup:
    """One horizontal bar: the part of a whole."""
    filled = max(0.0, min(share, 1.0)) * (WIDTH - 2)
    return Markup(  # noqa: S704 - only numbers and an escaped title
        f'<svg class="chart share" viewBox="0 0 {WIDTH} 28" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f'<rect x="1" y="1" width="{WIDTH - 2}" height="26" rx="6" fill="#e9ecef"/>'
        f'<rect x="1" y="1" width="{filled:.1f}" height="26" rx="6" fill="{PALETTE[1]}">'
        f"<title>{escape(title)}: {share * 100:.1f}%</title></rect></svg>"
    )


def _frame(
    title: str, top: float, days: Sequence[date], slot: float, tick: Callable[[float], str]
) -> list[str]:
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for fraction in (0, 0.5, 1):
        y = _y(top * fraction, top)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#dfe3ea"/><text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" '
            f'font-size="11" fill="#687083">{escape(tick(top * fraction))}</text>'
        )
    step = max(1, len(days) // 7)
    for position in range(0, len(days), step):
        x = LEFT + position * slot + slot / 2
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="middle" font-size="11" '
            f'fill="#687083">{days[position].strftime("%m-%d")}</text>'
        )
    return parts


def _y(value: float, top: float) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - (value / top if top else 0))


def _nice_max(value: int) -> int:
    """A round upper bound for the axis: 1 → 4, 13 → 20, 230 → 250 (halves stay whole)."""
    if value <= 4:
        return 4
    magnitude = 10 ** (len(str(value)) - 1)
    for factor in (1, 2, 2.5, 5, 10):
        if value <= factor * magnitude:
            return int(factor * magnitude)
    return value


def _nice_rate(value: float) -> float:
    for bound in (0.05, 0.1, 0.25, 0.5, 1.0):
        if value <= bound:
            return bound
    return 1.0
