"""The keepsake collage as a pure function of the photos' bytes (eventstore.collage): each photo
in its cell, in version order; the renditions' sizes; no metadata; byte-identical in any process;
the size a photo decodes to for a cell known from its size alone."""

import hashlib
import subprocess
import sys
from io import BytesIO

import pytest
from PIL import Image

from eventstore.collage import (
    BACKGROUND,
    FULL,
    SCREEN,
    compose_collage,
    drafted_size,
    layout_for,
    opened,
    photo_size,
)
from eventstore.collage_layout import Cell
from tests import images
from tests.unit.collage_photos import (
    COLOURS,
    PROJECT_ROOT,
    close_to,
    decoded,
    stored_photos,
)


@pytest.fixture(scope="module")
def seven():
    return stored_photos(7)


def test_the_collage_has_its_layouts_size_and_each_photo_in_its_cell_in_version_order(seven):
    for rendition in (FULL, SCREEN):
        collage = decoded(compose_collage(seven, rendition))
        layout = layout_for([photo_size(p) for p in seven], rendition)

        assert collage.size == (layout.width, layout.height)
        for cell in layout.cells:
            centre = (cell.x + cell.width // 2, cell.y + cell.height // 2)
            assert close_to(collage.getpixel(centre), COLOURS[cell.index]), (rendition.name, cell)
        assert close_to(collage.getpixel((1, 1)), BACKGROUND)


def test_the_background_is_under_eight_percent_of_a_mixed_collage(seven):
    for rendition in (SCREEN, FULL):
        share = images.share_close_to(decoded(compose_collage(seven, rendition)), BACKGROUND)
        assert 0 < share < 0.08, rendition.name


def test_the_screen_rendition_is_at_most_1600_pixels_and_the_keepsake_larger(seven):
    screen, full = decoded(compose_collage(seven, SCREEN)), decoded(compose_collage(seven, FULL))
    assert max(screen.size) <= 1600
    assert full.width > screen.width and full.height > screen.height


def test_the_collage_carries_no_exif(seven):
    collage = decoded(compose_collage(seven[:2]))
    assert len(collage.getexif()) == 0
    assert "exif" not in collage.info


def test_the_same_photos_always_give_byte_identical_collages(seven):
    assert compose_collage(seven[:5], SCREEN) == compose_collage(seven[:5], SCREEN)


def test_a_fresh_process_composes_byte_identical_collages(tmp_path, seven):
    for index, photo in enumerate(seven):
        (tmp_path / f"{index}.jpg").write_bytes(photo)
    script = (
        "import hashlib, sys\n"
        "from pathlib import Path\n"
        "from eventstore.collage import RENDITIONS, compose_collage\n"
        "photos = [Path(p).read_bytes() for p in sys.argv[1:]]\n"
        "for name in ('full', 'screen'):\n"
        "    print(hashlib.sha256(compose_collage(photos, RENDITIONS[name])).hexdigest())\n"
    )
    paths = [str(tmp_path / f"{index}.jpg") for index in range(7)]

    result = subprocess.run(
        [sys.executable, "-c", script, *paths],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=True, timeout=120,
    )

    expected = [hashlib.sha256(compose_collage(seven, r)).hexdigest() for r in (FULL, SCREEN)]
    assert result.stdout.split() == expected


def test_a_collage_of_no_photos_is_refused():
    with pytest.raises(ValueError):
        compose_collage([])


@pytest.mark.parametrize("size", [(4000, 3000), (2000, 1500), (1537, 2049), (64, 48), (3, 1000), (8191, 17)])
def test_the_size_a_photo_decodes_to_for_a_cell_is_known_from_its_size_as_pillow_drafts_it(size):
    for cell_size in [(1, 1), (7, 5), (64, 48), (250, 190), (499, 377), (1000, 750), (2000, 1500), (4001, 3001)]:
        cell = Cell(0, 0, 0, *cell_size)
        out = BytesIO()
        Image.new("RGB", size, (90, 120, 200)).save(out, "JPEG")
        assert opened(out.getvalue(), cell).size == drafted_size(size, cell), (size, cell_size)
