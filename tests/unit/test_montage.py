import hashlib
import subprocess
import sys
import threading
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image

from eventstore.collage import (
    BACKGROUND,
    FULL,
    SCREEN,
    compose_collage,
    covers,
    drafted_size,
    layout_for,
    opened,
    photo_size,
)
from eventstore.collage_layout import Cell
from eventstore.imaging import NormalizedPhoto, normalize_upload
from eventstore.montage import MontageCache
from eventstore.photo_files import PhotoFiles
from tests import images

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EVENT_ID = "3f2c7a10-5b1e-4c55-9d0e-0a1b2c3d4e5f"
COLOURS = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40), (200, 40, 200),
           (40, 200, 200), (240, 240, 240), (120, 60, 20), (20, 60, 120), (160, 160, 160)]
SIZES = [(800, 600), (600, 800), (800, 600), (800, 600), (600, 800), (800, 600), (600, 800)]


def normalized(n: int) -> list[NormalizedPhoto]:
    """n distinct uploads as normalize_upload keeps them, landscape and portrait mixed."""
    return [
        normalize_upload(images.png_bytes(*SIZES[i % len(SIZES)], color=colour(i)), max_pixels=10**7)
        for i in range(n)
    ]


def colour(i: int) -> tuple[int, int, int]:
    """Photo i's colour: COLOURS in turn, a shade lighter each time round (so no two alike)."""
    return tuple(c + 8 * (i // len(COLOURS)) for c in COLOURS[i % len(COLOURS)])


def stored_photos(n: int) -> list[bytes]:
    """n distinct stored photos."""
    return [photo.jpeg for photo in normalized(n)]


def decoded(data: bytes) -> Image.Image:
    image = Image.open(BytesIO(data))
    image.load()
    return image


def close_to(pixel, colour, tolerance=24):
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour))


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


@pytest.fixture
def stored(tmp_path, seven):
    """A PhotoFiles holding ten photos, and their shas in version order."""
    files = PhotoFiles(tmp_path / "files")
    shas = []
    for photo in seven + stored_photos(10)[7:]:
        sha = hashlib.sha256(photo).hexdigest()
        files.write("photo", sha, photo)
        shas.append(sha)
    return files, shas


def test_the_cache_writes_the_montage_file_named_by_version_rendition_and_photos(tmp_path, stored):
    files, shas = stored
    cache = MontageCache(tmp_path / "montages", files)

    montage = cache.get(EVENT_ID, shas[:3], SCREEN)

    digest = hashlib.sha256("".join(shas[:3]).encode()).hexdigest()[:16]
    written = tmp_path / "montages" / EVENT_ID / f"v3-screen-{digest}.jpg"
    assert written.read_bytes() == montage
    assert montage == compose_collage([files.read("photo", sha) for sha in shas[:3]], SCREEN)
    assert [p.name for p in written.parent.iterdir()] == [written.name]
    assert cache.has(EVENT_ID, shas[:3], SCREEN) and not cache.has(EVENT_ID, shas[:3], FULL)


def test_the_layout_the_cache_reports_is_the_size_of_what_it_draws(tmp_path, stored):
    files, shas = stored
    cache = MontageCache(tmp_path / "montages", files)
    for rendition in (SCREEN, FULL):
        layout = cache.layout(shas[:4], rendition)
        assert decoded(cache.get(EVENT_ID, shas[:4], rendition)).size == (layout.width, layout.height)


def test_a_second_call_returns_the_same_bytes_from_the_file(tmp_path, stored):
    files, shas = stored
    first = MontageCache(tmp_path / "montages", files).get(EVENT_ID, shas[:4])

    for path in (files.root / "photos").iterdir():
        path.unlink()  # a rebuild could no longer succeed: the bytes must come from the file
    again = MontageCache(tmp_path / "montages", files).get(EVENT_ID, shas[:4])

    assert again == first


def test_screen_renditions_drawn_from_remembered_decodes_match_fresh_ones(tmp_path, stored):
    files, shas = stored
    cache = MontageCache(tmp_path / "montages", files)
    every_photo = [files.read("photo", sha) for sha in shas]

    for n in range(1, 11):  # each version after the last, as commits build them
        assert cache.get(EVENT_ID, shas[:n], SCREEN) == compose_collage(every_photo[:n], SCREEN), n


@pytest.fixture(scope="module")
def twenty():
    return normalized(20)


@pytest.fixture
def stored_with_thumbs(tmp_path, twenty):
    """A PhotoFiles holding twenty photos and their thumbnails."""
    files = PhotoFiles(tmp_path / "files")
    for photo in twenty:
        files.write("photo", photo.sha256, photo.jpeg)
        files.write("thumb", photo.thumb_sha256, photo.thumb)
    return files


def test_screen_renditions_drawn_with_thumbnails_match_compose_collage(tmp_path, twenty, stored_with_thumbs):
    cache = MontageCache(tmp_path / "montages", stored_with_thumbs)
    shas, thumb_shas = [p.sha256 for p in twenty], [p.thumb_sha256 for p in twenty]
    jpegs, thumbs = [p.jpeg for p in twenty], [p.thumb for p in twenty]

    for n in range(1, 21):  # each version after the last, as commits build them
        assert cache.get(EVENT_ID, shas[:n], SCREEN, thumb_shas[:n]) == compose_collage(jpegs[:n], SCREEN, thumbs[:n]), n

    collage = decoded(cache.get(EVENT_ID, shas, SCREEN, thumb_shas))
    layout = cache.layout(shas, SCREEN)
    assert collage.size == (layout.width, layout.height)
    for row in layout.rows:
        for cell in row:
            centre = (cell.x + cell.width // 2, cell.y + cell.height // 2)
            assert close_to(collage.getpixel(centre), colour(cell.index)), cell


KINDS_READ = {1: {"photo"}, 4: {"photo"}, 10: {"photo", "thumb"}, 20: {"thumb"}}


@pytest.mark.parametrize("count", sorted(KINDS_READ))
def test_a_screen_cell_is_drawn_from_the_thumbnail_exactly_where_the_thumbnail_covers_it(tmp_path, twenty,
                                                                                       stored_with_thumbs, count):
    files = stored_with_thumbs
    read, real_read = [], files.read
    files.read = lambda kind, sha: (read.append((kind, sha)), real_read(kind, sha))[1]
    photos = twenty[:count]

    MontageCache(tmp_path / "montages", files).get(EVENT_ID, [p.sha256 for p in photos], SCREEN,
                                                   [p.thumb_sha256 for p in photos])

    cells = sorted((cell for row in layout_for([(p.width, p.height) for p in photos], SCREEN).rows for cell in row),
                   key=lambda cell: (cell.y, cell.x))
    expected = [("thumb", photos[c.index].thumb_sha256) if covers(decoded(photos[c.index].thumb).size, c)
                else ("photo", photos[c.index].sha256) for c in cells]
    assert read == expected
    # A few 800x600 photos fill cells larger than their 512 px thumbnails; ten fill some cells
    # the thumbnails cover and some they do not; twenty fill cells of at most 384x288.
    assert {kind for kind, _ in read} == KINDS_READ[count]


def test_the_keepsake_is_drawn_from_the_photos_whatever_thumbnails_are_given(tmp_path, twenty, stored_with_thumbs):
    cache = MontageCache(tmp_path / "montages", stored_with_thumbs)
    shas, thumb_shas = [p.sha256 for p in twenty[:4]], [p.thumb_sha256 for p in twenty[:4]]

    assert cache.get(EVENT_ID, shas, FULL, thumb_shas) == compose_collage([p.jpeg for p in twenty[:4]], FULL)
    assert cache.path(EVENT_ID, shas, FULL, thumb_shas) == cache.path(EVENT_ID, shas, FULL)
    # The screen rendition's name covers what it is drawn from: with thumbnails, another file.
    assert cache.path(EVENT_ID, shas, SCREEN, thumb_shas) != cache.path(EVENT_ID, shas, SCREEN)
    with pytest.raises(ValueError):
        cache.path(EVENT_ID, shas, SCREEN, thumb_shas[:3])
    with pytest.raises(ValueError):
        cache.path(EVENT_ID, shas, SCREEN, thumb_shas[:3] + ["../" + thumb_shas[3][3:]])


@pytest.mark.parametrize("size", [(4000, 3000), (2000, 1500), (1537, 2049), (64, 48), (3, 1000), (8191, 17)])
def test_the_size_a_photo_decodes_to_for_a_cell_is_known_from_its_size_as_pillow_drafts_it(size):
    for cell_size in [(1, 1), (7, 5), (64, 48), (250, 190), (499, 377), (1000, 750), (2000, 1500), (4001, 3001)]:
        cell = Cell(0, 0, 0, *cell_size)
        out = BytesIO()
        Image.new("RGB", size, (90, 120, 200)).save(out, "JPEG")
        assert opened(out.getvalue(), cell).size == drafted_size(size, cell), (size, cell_size)


def test_a_montage_drawn_again_reads_no_photo_it_has_decoded_at_that_scale(tmp_path, stored):
    files, shas = stored
    cache = MontageCache(tmp_path / "montages", files)
    read, real_read = [], files.read
    files.read = lambda kind, sha: (read.append(sha), real_read(kind, sha))[1]
    first = cache.get(EVENT_ID, shas[:3], SCREEN)
    assert sorted(read) == sorted(shas[:3])
    read.clear()
    cache.path(EVENT_ID, shas[:3], SCREEN).unlink()  # lost: drawn again
    assert cache.get(EVENT_ID, shas[:3], SCREEN) == first
    assert read == []


def test_a_damaged_photo_file_is_refused_rather_than_drawn(tmp_path, stored, seven):
    files, shas = stored
    files.path("photo", shas[0]).write_bytes(seven[1])

    with pytest.raises(ValueError):
        MontageCache(tmp_path / "montages", files).get(EVENT_ID, shas[:1], SCREEN)


@pytest.mark.parametrize("event_id", ["../escape", "ABCDEF", "", "a/b", "abc.def", "3f2c 7a10"])
def test_the_cache_rejects_an_event_id_that_is_not_lowercase_hex_and_dashes(tmp_path, stored, event_id):
    files, shas = stored

    with pytest.raises(ValueError):
        MontageCache(tmp_path / "montages", files).get(event_id, shas[:1])
    assert not (tmp_path / "montages").exists()


def test_the_cache_rejects_a_photo_sha_that_could_leave_the_folder(tmp_path, stored):
    files, shas = stored

    with pytest.raises(ValueError):
        MontageCache(tmp_path / "montages", files).get(EVENT_ID, [shas[0], "../" + shas[1][3:]])


class CountingCache(MontageCache):
    """The real cache, counting how many montages it draws."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.drawn = []

    def _compose(self, photo_shas, rendition, thumb_shas):
        self.drawn.append((len(photo_shas), rendition.name))
        return super()._compose(photo_shas, rendition, thumb_shas)


def run_together(count: int, action) -> list:
    errors = []

    def guarded(n: int) -> None:
        try:
            action(n)
        except Exception as error:  # surfaced by the caller's assertion
            errors.append(error)

    workers = [threading.Thread(target=guarded, args=(n,)) for n in range(count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return errors


def test_requests_for_the_same_missing_montage_at_once_draw_it_once(tmp_path, stored):
    files, shas = stored
    cache = CountingCache(tmp_path / "montages", files)
    results = []

    assert run_together(6, lambda _: results.append(cache.get(EVENT_ID, shas[:5], SCREEN))) == []

    assert cache.drawn == [(5, "screen")]
    assert len(set(results)) == 1 and len(results) == 6


def test_threads_building_versions_at_once_all_get_the_right_montages(tmp_path, stored):
    files, shas = stored
    cache = MontageCache(tmp_path / "montages", files, decoded_budget=4 * 2**20)
    results: dict[int, bytes] = {}

    def build(i: int) -> None:
        n = i // 2 + 1
        results[n] = cache.get(EVENT_ID, shas[:n], SCREEN)

    assert run_together(20, build) == []
    every_photo = [files.read("photo", sha) for sha in shas]
    for n in range(1, 11):
        assert results[n] == compose_collage(every_photo[:n], SCREEN), n
