"""The justified layout of the keepsake collage: pure integer arithmetic, checked as tables and
as properties over random photo sizes."""

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventstore.collage_layout import ONE, Layout, fit, partition, plan, row_count

LANDSCAPE, PORTRAIT = (2000, 1500), (1500, 2000)
# 7 photos mixing landscape and portrait, the shape of a real event
MIXED = [LANDSCAPE, PORTRAIT, LANDSCAPE, LANDSCAPE, PORTRAIT, LANDSCAPE, PORTRAIT]


def mixed(n: int) -> list[tuple[int, int]]:
    return (MIXED * (n // len(MIXED) + 1))[:n]


def keepsake(sizes) -> Layout:
    return fit(sizes, long_edge=8192, max_pixels=32_000_000, source_pixels=sum(w * h for w, h in sizes))


def screen(sizes) -> Layout:
    return fit(sizes, long_edge=1600, max_pixels=1600 * 1600, source_pixels=sum(w * h for w, h in sizes))


def background_share(layout: Layout) -> float:
    covered = sum(cell.width * cell.height for cell in layout.cells)
    return 1 - covered / (layout.width * layout.height)


def assert_sound(layout: Layout, sizes) -> None:
    """Every photo in order, inside the canvas, in its aspect ratio, rows filling the width."""
    assert [cell.index for cell in layout.cells] == list(range(len(sizes)))
    for row in layout.rows:
        assert len({cell.height for cell in row}) == 1  # one height per row
        assert row[0].x == layout.gutter
        assert row[-1].x + row[-1].width == layout.width - layout.gutter  # the row fills the width
        for left, right in itertools.pairwise(row):
            assert right.x == left.x + left.width + layout.gutter  # only a gutter between photos
    for cell in layout.cells:
        assert cell.width >= 1 and cell.height >= 1
        assert cell.y + cell.height <= layout.height - layout.gutter
        w, h = sizes[cell.index]
        # the aspect ratio is kept to within a pixel or so of rounding on either side
        assert abs(cell.width * h - cell.height * w) <= 2 * max(w, h), (cell, w, h)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 10, 40, 100])
def test_every_layout_keeps_the_order_the_aspect_ratios_and_fills_each_row(n):
    for layout in (keepsake(mixed(n)), screen(mixed(n))):
        assert_sound(layout, mixed(n))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 10, 40, 100])
def test_background_and_gutters_are_under_eight_percent(n):
    for layout in (keepsake(mixed(n)), screen(mixed(n))):
        assert background_share(layout) < 0.08, (n, layout.width, layout.height)


@pytest.mark.parametrize("n", [7, 10, 40, 100])
def test_rows_are_balanced_so_the_last_one_is_not_a_stretched_straggler(n):
    heights = [row[0].height for row in keepsake(mixed(n)).rows]
    assert len(heights) > 1
    assert max(heights) <= 1.35 * min(heights), heights


@pytest.mark.parametrize("n, long_edge_at_least", [(2, 3000), (4, 3000), (7, 3000), (10, 3000), (40, 3000)])
def test_several_full_size_photos_give_a_keepsake_of_at_least_3000_pixels(n, long_edge_at_least):
    assert keepsake(mixed(n)).long_edge >= long_edge_at_least


@pytest.mark.parametrize("n", [100, 300])
def test_the_keepsake_never_exceeds_8192_pixels_nor_32_megapixels(n):
    layout = keepsake(mixed(n))
    assert layout.long_edge <= 8192
    assert layout.width * layout.height <= 32_000_000


def test_a_lone_photo_is_not_blown_up_beyond_its_own_pixels():
    layout = keepsake([(640, 480)])
    (cell,) = layout.cells
    assert cell.width <= 640 and cell.height <= 480
    assert layout.width <= 640 + 2 * layout.gutter


def test_the_screen_rendition_is_at_most_1600_pixels_and_never_larger_than_the_keepsake():
    for n in (1, 3, 10, 40):
        small, large = screen(mixed(n)), keepsake(mixed(n))
        assert small.long_edge <= 1600
        assert small.width <= large.width and small.height <= large.height


@pytest.mark.parametrize("ratios, rows, counts", [
    ([ONE] * 4, 2, [2, 2]),
    ([ONE] * 7, 2, [3, 4]),  # an odd count: one row takes the extra photo
    ([4 * ONE, ONE, ONE, ONE, ONE], 2, [1, 4]),  # a panorama fills a row on its own
    ([ONE, ONE, ONE, ONE, 4 * ONE], 2, [4, 1]),
    ([ONE] * 3, 3, [1, 1, 1]),
])
def test_the_partition_evens_out_the_rows_summed_aspect_ratios(ratios, rows, counts):
    assert partition(ratios, rows) == counts


@pytest.mark.parametrize("sizes, rows", [
    ([LANDSCAPE], 1), ([LANDSCAPE] * 2, 1), ([LANDSCAPE] * 4, 2), ([PORTRAIT] * 4, 1),
    ([LANDSCAPE] * 12, 3),
])
def test_the_row_count_aims_at_a_four_by_three_collage(sizes, rows):
    ratios, _ = plan(sizes)
    assert row_count(ratios) == rows


def test_a_collage_of_no_photos_is_refused():
    with pytest.raises(ValueError):
        keepsake([])


sizes_strategy = st.lists(st.tuples(st.integers(16, 6000), st.integers(16, 6000)), min_size=1, max_size=60)


@settings(max_examples=150, deadline=None)
@given(sizes_strategy)
def test_any_photo_sizes_give_a_sound_layout_within_the_bounds(sizes):
    for layout in (keepsake(sizes), screen(sizes)):
        assert_sound(layout, sizes)
        assert layout.long_edge <= 8192 and layout.width * layout.height <= 32_000_000


def every_cut_tried(ratios, rows):
    """The partition as first written: every start of the last row tried, the least (cost, start)
    kept. What the pruned search in collage_layout.partition must give, ties included."""
    n, prefix = len(ratios), [0]
    for ratio in ratios:
        prefix.append(prefix[-1] + ratio)
    total = prefix[-1]
    best = [[None] * (n + 1) for _ in range(rows + 1)]
    cut = [[0] * (n + 1) for _ in range(rows + 1)]
    best[0][0] = 0
    for k in range(1, rows + 1):
        for i in range(k, n - (rows - k) + 1):
            best[k][i], cut[k][i] = min((best[k - 1][j] + ((prefix[i] - prefix[j]) * rows - total) ** 2, j)
                                        for j in range(k - 1, i) if best[k - 1][j] is not None)
    counts, end = [], n
    for k in range(rows, 0, -1):
        counts.append(end - cut[k][end])
        end = cut[k][end]
    return counts[::-1]


@given(st.lists(st.sampled_from([ONE // 3, ONE * 3 // 4, ONE, ONE * 4 // 3, ONE * 16 // 9, 5 * ONE]), min_size=1, max_size=40)
       | st.lists(st.integers(1, 8 * ONE), min_size=1, max_size=40), st.data())
def test_the_pruned_partition_is_the_one_every_cut_tried_gives_ties_included(ratios, data):
    rows = data.draw(st.integers(1, len(ratios)))
    assert partition(ratios, rows) == every_cut_tried(ratios, rows)
