"""Charts drawn on the server as inline SVG: no script, no inline style, nothing fetched.

Colours are SVG presentation attributes (allowed by `style-src 'self'`); sizes scale with the
viewBox, so a chart fits a phone screen as well as a desktop one. Each bar carries a <title> that
a browser shows on hover, and the figures are also in a table next to the chart.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from datetime import date

from markupsafe import Markup, escape

# Each at least 3:1 against the white card (WCAG 1.4.11), so a bar is seen without its colour
# being told apart from the others.
PALETTE = ("#1a5fd0", "#06823f", "#b35c00", "#c2255c", "#6741d9", "#0b7285", "#5c6370")
# One channel, one colour, in every chart (a legend learnt once holds everywhere); channels that
# share a chart never share a colour. Names not listed take a colour from a hash of the name.
SERIES_COLOURS = {
    "website_password": PALETTE[0],
    "website_wechat": PALETTE[1],
    "miniprogram": PALETTE[2],
    "website": PALETTE[3],
    "admin": PALETTE[6],
    "same_wechat_unionid": PALETTE[1],
    "same_verified_phone": PALETTE[0],
    "admin_decision": PALETTE[6],
    "authorization_code": PALETTE[0],
    "refresh_token": PALETTE[5],
    "client_credentials": PALETTE[4],
    "urn:ietf:params:oauth:grant-type:token-exchange": PALETTE[2],
}
WIDTH, HEIGHT = 640, 220
# Room for the labels at the font size a phone gets (admin.css: 20 units under 480 px).
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 12, 30


def colour(name: str) -> str:
    """The colour of a series, the same in every chart and on every day."""
    known = SERIES_COLOURS.get(name)
    return known or PALETTE[zlib.crc32(name.encode()) % len(PALETTE)]


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
    parts = _frame(title, top, days, slot, lambda v: str(round(v)))
    for position in range(len(days)):
        base = 0
        for name, values in series.items():
            value = values[position]
            if not value:
                continue
            y_top, y_bottom = _y(base + value, top), _y(base, top)
            parts.append(
                f'<rect x="{LEFT + position * slot + slot * 0.15:.1f}" y="{y_top:.1f}" '
                f'width="{slot * 0.7:.1f}" height="{max(y_bottom - y_top, 0.5):.1f}" '
                f'fill="{colour(name)}"><title>{escape(days[position].isoformat())} · '
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
    """A round, even upper bound for the axis, so that its middle tick is a whole number of
    logins: 1 → 4, 7 → 10, 13 → 20, 21 → 50, 230 → 250."""
    if value <= 4:
        return 4
    magnitude = 10 ** (len(str(value)) - 1)
    for factor in (1, 2, 2.5, 5, 10):
        bound = factor * magnitude
        if value <= bound and bound % 2 == 0:
            return int(bound)
    return value + value % 2


def _nice_rate(value: float) -> float:
    for bound in (0.05, 0.1, 0.25, 0.5, 1.0):
        if value <= bound:
            return bound
    return 1.0
