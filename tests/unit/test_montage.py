"""The montage files (eventstore.montage.MontageCache): named by version, rendition and what they
are drawn from, drawn once, from remembered decodes and thumbnails where they serve, and always
equal to compose_collage's."""

import hashlib
import threading

import pytest

from eventstore.collage import FULL, SCREEN, compose_collage, covers, layout_for
from eventstore.montage import MontageCache
from eventstore.photo_files import PhotoFiles
from tests.unit.collage_photos import (
    close_to,
    colour,
    decoded,
    normalized,
    stored_photos,
)

EVENT_ID = "3f2c7a10-5b1e-4c55-9d0e-0a1b2c3d4e5f"


@pytest.fixture(scope="module")
def seven():
    return stored_photos(7)


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


def test_a_size_known_where_the_photo_was_made_is_not_read_from_its_file(tmp_path, stored, monkeypatch):
    files, shas = stored
    cache = MontageCache(tmp_path / "montages", files)
    sizes = {sha: decoded(files.read("photo", sha)).size for sha in shas[:3]}
    for sha, size in sizes.items():
        cache.know_size(sha, size)
    opened = []
    monkeypatch.setattr("eventstore.montage.photo_size", lambda source: opened.append(source))

    layout = cache.layout(shas[:3], SCREEN)

    assert opened == []
    assert layout == layout_for(list(sizes.values()), SCREEN)


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
