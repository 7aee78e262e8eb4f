"""Where each photo goes in the keepsake collage: a justified layout, in integers only.

Rows of photos, in version order; the photos of one row share its height and together with thin
gutters fill the full width, so every photo keeps its aspect ratio (to within a pixel) and no
letterbox band is left. The photos are split into rows by a linear partition (dynamic
programming) that makes the rows' summed aspect ratios, hence their heights, as even as it can:
the last row is never a lonely photo stretched across the width, nor a short one left half empty.

Every figure is an integer (aspect ratios are fixed-point), so each site computes the very same
layout from the same photo sizes: that is half of the collage being byte-identical everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

ONE = 1 << 16  # fixed point: an aspect ratio of 1.0
# The collage is aimed at this width:height (4:3), which decides how many rows it has.
SHAPE_W, SHAPE_H = 4, 3
GUTTER_DIVISOR = 512  # a gutter (and the margin) is width // 512 pixels, at least MIN_GUTTER
MIN_GUTTER = 2


@dataclass(frozen=True)
class Cell:
    """Where one photo is drawn, in canvas pixels; `index` is its place in version order."""

    index: int
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class Layout:
    width: int
    height: int
    gutter: int
    rows: tuple[tuple[Cell, ...], ...]

    @property
    def cells(self) -> list[Cell]:
        return [cell for row in self.rows for cell in row]

    @property
    def long_edge(self) -> int:
        return max(self.width, self.height)


def aspects(sizes: Sequence[tuple[int, int]]) -> list[int]:
    """Each (width, height) as a fixed-point aspect ratio (width / height * ONE), at least 1."""
    if not sizes:
        raise ValueError("a collage needs at least one photo")
    if any(w <= 0 or h <= 0 for w, h in sizes):
        raise ValueError(f"photo sizes must be positive: {list(sizes)}")
    return [max(1, (w * ONE + h // 2) // h) for w, h in sizes]


def row_count(ratios: Sequence[int]) -> int:
    """The number of rows that brings the collage closest to SHAPE_W:SHAPE_H.

    With r rows of even summed aspect A/r, each row is W*r/A high, so the whole is W*r*r/A high:
    r*r ~ A * SHAPE_H / SHAPE_W.
    """
    goal = sum(ratios) * SHAPE_H  # r*r*ONE*SHAPE_W should come close to this
    best = min(range(1, len(ratios) + 1), key=lambda r: (abs(r * r * ONE * SHAPE_W - goal), r))
    return best


def partition(ratios: Sequence[int], rows: int) -> list[int]:
    """Split the sequence into `rows` consecutive non-empty runs whose sums are as even as can
    be (least sum of squared deviations from the mean); returns each row's photo count."""
    n = len(ratios)
    if not 1 <= rows <= n:
        raise ValueError(f"cannot put {n} photos in {rows} rows")
    prefix = [0]
    for ratio in ratios:
        prefix.append(prefix[-1] + ratio)
    # Sum of (row_sum * rows - total)^2: the squared deviation, scaled to stay in integers.
    total = prefix[-1]

    # best[k][i]: least cost of putting the first i photos in k rows; cut[k][i]: where row k
    # starts. This runs at every montage build, so the last row's start j is tried from the
    # nearest back: once that row is longer than the mean and its cost alone exceeds the best
    # found, every earlier j costs more still (all costs are squares): the rest are skipped.
    # Ties go to the earliest cut, as with every j tried: the same layout, deterministic.
    impossible = None
    best = [[impossible] * (n + 1) for _ in range(rows + 1)]
    cut = [[0] * (n + 1) for _ in range(rows + 1)]
    best[0][0] = 0
    for k in range(1, rows + 1):
        before, here, cuts = best[k - 1], best[k], cut[k]
        for i in range(k, n - (rows - k) + 1):
            end_sum, least, at = prefix[i], None, 0
            # before[j] is set where k - 1 rows can hold j photos (the 0th "row": j = 0 only)
            for j in range(min(i - 1, n - rows + k - 1) if k > 1 else 0, k - 2, -1):
                over = (end_sum - prefix[j]) * rows - total
                if least is not None and over > 0 and over * over > least:
                    break
                c = before[j] + over * over
                if least is None or c <= least:  # j only decreases: a tie takes the earlier cut
                    least, at = c, j
            here[i], cuts[i] = least, at
    counts = []
    end = n
    for k in range(rows, 0, -1):
        start = cut[k][end]
        counts.append(end - start)
        end = start
    return counts[::-1]


def gutter_for(width: int) -> int:
    return max(MIN_GUTTER, width // GUTTER_DIVISOR)


def justify(ratios: Sequence[int], counts: Sequence[int], width: int) -> Layout:
    """The layout of rows with these photo counts at this canvas width."""
    gutter = gutter_for(width)
    inner = width - 2 * gutter
    rows = []
    y = gutter
    start = 0
    for count in counts:
        row = ratios[start:start + count]
        photos_width = inner - (count - 1) * gutter
        if photos_width < count:
            raise ValueError(f"a canvas {width} px wide cannot hold a row of {count} photos")
        row_sum = sum(row)
        height = max(1, (photos_width * ONE + row_sum // 2) // row_sum)
        edges = _edges(row, photos_width)
        cells = [Cell(start + offset, gutter + edges[offset] + offset * gutter, y,
                      edges[offset + 1] - edges[offset], height)
                 for offset in range(count)]
        rows.append(tuple(cells))
        y += height + gutter
        start += count
    return Layout(width=width, height=y, gutter=gutter, rows=tuple(rows))


def _edges(row: Sequence[int], photos_width: int) -> list[int]:
    """Where each photo of a row starts and the last one ends, from 0 to photos_width.

    Cumulative rounding makes the widths add up to exactly photos_width, so the row fills the
    canvas and only gutters show between photos; each photo keeps at least one pixel, even a
    sliver beside wide neighbours.
    """
    row_sum, count = sum(row), len(row)
    edges, running = [0], 0
    for offset, ratio in enumerate(row[:-1], start=1):
        running += ratio
        ideal = (photos_width * running + row_sum // 2) // row_sum
        edges.append(min(max(ideal, edges[-1] + 1), photos_width - (count - offset)))
    return edges + [photos_width]


def plan(sizes: Sequence[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """The photos' fixed-point aspect ratios and each row's photo count: the layout's shape,
    the same at every scale."""
    ratios = aspects(sizes)
    return ratios, partition(ratios, row_count(ratios))


def fit(sizes: Sequence[tuple[int, int]], *, long_edge: int, max_pixels: int,
        source_pixels: int | None = None) -> Layout:
    """The largest layout whose long edge is at most `long_edge`, whose area is at most
    `max_pixels` and, given `source_pixels`, whose photos hold no more pixels than the sources
    do together (so the collage is not blown up beyond what the photos carry)."""
    ratios, counts = plan(sizes)
    # Photo area at width W is about W*W * sum(1/A_row) (fixed point: W*W*ONE / A_row).
    inverse = sum(ONE * ONE // sum(ratios[s:s + c]) for s, c in _spans(counts))
    width = long_edge
    if source_pixels is not None:
        width = min(width, max(1, math.isqrt(source_pixels * ONE // max(1, inverse))))
    width = max(width, _narrowest(counts))
    layout = justify(ratios, counts, width)
    # Shrink until every bound holds; the width only ever goes down, so this ends.
    while (layout.long_edge > long_edge or layout.width * layout.height > max_pixels) and width > _narrowest(counts):
        by_edge = width * long_edge // layout.long_edge
        by_area = math.isqrt(width * width * max_pixels // (layout.width * layout.height))
        width = max(_narrowest(counts), min(width - 1, by_edge, by_area))
        layout = justify(ratios, counts, width)
    return layout


def _spans(counts: Sequence[int]):
    start = 0
    for count in counts:
        yield start, count
        start += count


def _narrowest(counts: Sequence[int]) -> int:
    """A width that leaves every photo of the fullest row a few pixels beside its gutters."""
    return 4 * max(counts) + 8
