"""Sequence diagrams (SVG) of traced transactions (web.pages.audit_traces). Pure: a string out.

    svg = draw(trace, sites=(0, 1, 2, 3), unavailable={2})

Sites are lanes; a step is an arrow between lanes (a loop when a site's coordinator talks to its
own participant) or a note on one lane. Dashed means a repeat or late (a retry as the logs show
it); a cross ends a prepare that got no answer. The SVG has no ids, so many share one page.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from web.pages.audit_traces import Step, Trace, duration

LANE_W, LEFT, TOP, ROW_H = 170, 64, 46, 30
HALO = ' stroke="#fff" stroke-width="4" paint-order="stroke"'  # labels stay legible over lifelines
_COLOURS = {"plain": "#344054", "good": "#1a7f37", "bad": "#b42318", "warn": "#9a5b00"}


def draw(trace: Trace, sites: Iterable[int], unavailable: Iterable[int] = ()) -> str:
    """The trace as an inline SVG element."""
    lanes = list(sites)
    unavailable = set(unavailable)
    x = {site: LEFT + LANE_W * i + LANE_W // 2 for i, site in enumerate(lanes)}
    width = LEFT + LANE_W * len(lanes) + 8
    height = TOP + ROW_H * len(trace.steps) + 16
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="sequence" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" font-family="system-ui, sans-serif" font-size="12">',
        f"<title>{escape(_summary(trace))}</title>",
    ]
    for site in lanes:
        parts += _lane(site, x[site], height, site == trace.coordinator, site in unavailable)
    start = trace.started
    for i, step in enumerate(trace.steps):
        y = TOP + ROW_H * i + 20
        offset = (step.at - start).total_seconds()
        parts.append(f'<text x="4" y="{y + 4}" fill="#475467">+{escape(duration(offset))}</text>')
        if step.source in x and step.target in x:
            parts.append(_step(step, x[step.source], x[step.target], y, width))
    parts.append("</svg>")
    return "".join(parts)


def _summary(trace: Trace) -> str:
    tail = f": {trace.outcome}" if trace.outcome else ""
    return f"{trace.title}{tail}"


def _lane(site: int, cx: int, height: int, coordinator: bool, unavailable: bool) -> list[str]:
    fill, ink = ("#f2f4f7", "#667085") if unavailable else ("#eef4ff", "#1d2939")
    label = f"site {site}" + (" · coordinator" if coordinator else "")
    sub = "log unavailable" if unavailable else ""
    lane = [
        f'<rect x="{cx - LANE_W // 2 + 6}" y="4" width="{LANE_W - 12}" height="30" rx="6" '
        f'fill="{fill}" stroke="{ink}" stroke-width="1"/>',
        f'<text x="{cx}" y="{18 if sub else 23}" text-anchor="middle" fill="{ink}" '
        f'font-weight="600">{escape(label)}</text>',
        f'<line x1="{cx}" y1="34" x2="{cx}" y2="{height - 6}" stroke="{ink}" stroke-width="1" '
        f'stroke-dasharray="{"2 4" if unavailable else "6 4"}" opacity="0.6"/>',
    ]
    if sub:
        lane.append(f'<text x="{cx}" y="30" text-anchor="middle" fill="{ink}" font-size="10">{sub}</text>')
    return lane


def _step(step: Step, x1: int, x2: int, y: int, width: int) -> str:
    colour = _COLOURS.get(step.tone, _COLOURS["plain"])
    dash = ' stroke-dasharray="5 4"' if step.again else ""
    label = escape(step.label)
    tip = f"<title>{escape(step.detail or step.label)}</title>"
    if not step.arrow:
        w = 14 + 6.8 * len(step.label)
        left = min(max(x1 - w / 2, LEFT - 4), width - w - 2)
        return (f'<g>{tip}<rect x="{left:.0f}" y="{y - 13}" width="{w:.0f}" height="20" rx="4" '
                f'fill="#fff" stroke="{colour}"{dash}/><text x="{left + w / 2:.0f}" y="{y + 1}" '
                f'text-anchor="middle" fill="{colour}"{HALO}>{label}</text></g>')
    if x1 == x2:  # a site's coordinator talking to its own participant: a loop
        return (f'<g>{tip}<path d="M{x1} {y - 8} h22 v12 h-18" fill="none" stroke="{colour}" '
                f'stroke-width="1.5"{dash}/>{_head(x1 + 4, y + 4, -1, colour)}'
                f'<text x="{x1 + 28}" y="{y + 1}" fill="{colour}"{HALO}>{label}</text></g>')
    direction = 1 if x2 > x1 else -1
    end = x1 + (x2 - x1) * 0.6 if step.lost else x2 - direction * 3
    marker = _cross(end, y, colour) if step.lost else _head(end, y, direction, colour)
    return (f'<g>{tip}<line x1="{x1}" y1="{y}" x2="{end:.0f}" y2="{y}" stroke="{colour}" '
            f'stroke-width="1.5"{dash}/>{marker}<text x="{(x1 + end) / 2:.0f}" y="{y - 5}" '
            f'text-anchor="middle" fill="{colour}"{HALO}>{label}</text></g>')


def _head(x: float, y: int, direction: int, colour: str) -> str:
    back = x - direction * 8
    return f'<polygon points="{x:.0f},{y} {back:.0f},{y - 4} {back:.0f},{y + 4}" fill="{colour}"/>'


def _cross(x: float, y: int, colour: str) -> str:
    return (f'<path d="M{x - 5:.0f} {y - 5} l10 10 M{x - 5:.0f} {y + 5} l10 -10" stroke="{colour}" '
            f'stroke-width="2"/>')
