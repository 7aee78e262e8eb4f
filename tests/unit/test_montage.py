import hashlib
import subprocess
import sys
import threading
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image

from eventstore.imaging import normalize_upload
from eventstore.montage import BACKGROUND, MontageCache, compose_montage, grid_shape
from eventstore.photo_files import PhotoFiles
from tests import images

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EVENT_ID = "3f2c7a10-5b1e-4c55-9d0e-0a1b2c3d4e5f"
COLOURS = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40), (200, 40, 200),
           (40, 200, 200), (240, 240, 240), (120, 60, 20), (20, 60, 120), (160, 160, 160)]


def thumbs(n: int) -> list[bytes]:
    """n distinct thumbnails, alternating landscape and portrait."""
    sizes = [(256, 170), (170, 256)]
    return [
        normalize_upload(images.png_bytes(*sizes[i % 2], color=COLOURS[i]), max_pixels=10**6).thumb
        for i in range(n)
    ]


def decoded(data: bytes) -> Image.Image:
    image = Image.open(BytesIO(data))
    image.load()
    return image


def close_to(pixel, colour, tolerance=24):
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour))


@pytest.mark.parametrize(
    "n, columns, rows, size",
    [(1, 1, 1, (268, 268)), (2, 2, 1, (530, 268)), (4, 2, 2, (530, 530)),
     (5, 3, 2, (792, 530)), (10, 4, 3, (1054, 792))],
)
def test_the_grid_is_as_square_as_the_count_allows(n, columns, rows, size):
    assert grid_shape(n) == (columns, rows)
    assert decoded(compose_montage(thumbs(n))).size == size


def test_a_montage_of_no_thumbnails_is_refused():
    with pytest.raises(ValueError):
        compose_montage([])


def test_thumbnails_are_centred_in_their_cells_in_order_on_a_dark_background():
    montage = decoded(compose_montage(thumbs(5)))

    for index in range(5):
        row, column = divmod(index, 3)
        centre = (6 + column * 262 + 128, 6 + row * 262 + 128)
        assert close_to(montage.getpixel(centre), COLOURS[index]), index
    assert close_to(montage.getpixel((2, 2)), BACKGROUND)
    assert close_to(montage.getpixel((6 + 128, 6 + 8)), BACKGROUND)  # above a landscape thumb
    assert close_to(montage.getpixel((6 + 262 + 8, 6 + 128)), BACKGROUND)  # beside a portrait one
    assert close_to(montage.getpixel((6 + 2 * 262 + 128, 6 + 262 + 128)), BACKGROUND)  # empty cell


def test_the_montage_carries_no_exif():
    montage = compose_montage(thumbs(2))

    assert len(decoded(montage).getexif()) == 0
    assert "exif" not in decoded(montage).info


def test_the_same_thumbnails_always_give_byte_identical_montages():
    assert compose_montage(thumbs(5)) == compose_montage(thumbs(5))


def test_a_fresh_process_composes_a_byte_identical_montage(tmp_path):
    inputs = thumbs(5)
    for index, thumb in enumerate(inputs):
        (tmp_path / f"{index}.jpg").write_bytes(thumb)
    script = (
        "import hashlib, sys\n"
        "from pathlib import Path\n"
        "from eventstore.montage import compose_montage\n"
        "thumbs = [Path(p).read_bytes() for p in sys.argv[1:]]\n"
        "print(hashlib.sha256(compose_montage(thumbs)).hexdigest())\n"
    )
    paths = [str(tmp_path / f"{index}.jpg") for index in range(5)]

    result = subprocess.run(
        [sys.executable, "-c", script, *paths],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=True, timeout=60,
    )

    assert result.stdout.strip() == hashlib.sha256(compose_montage(inputs)).hexdigest()


@pytest.fixture
def stored(tmp_path):
    """A PhotoFiles holding ten thumbnails, and their shas in version order."""
    files = PhotoFiles(tmp_path / "files")
    shas = []
    for thumb in thumbs(10):
        sha = hashlib.sha256(thumb).hexdigest()
        files.write("thumb", sha, thumb)
        shas.append(sha)
    return files, shas


def test_the_cache_writes_the_montage_file_named_by_version_and_thumbnails(tmp_path, stored):
    files, shas = stored
    cache = MontageCache(tmp_path / "montages", files)

    montage = cache.get(EVENT_ID, shas[:3])

    digest = hashlib.sha256("".join(shas[:3]).encode()).hexdigest()[:16]
    written = tmp_path / "montages" / EVENT_ID / f"v3-{digest}.jpg"
    assert written.read_bytes() == montage
    assert montage == compose_montage([files.read("thumb", sha) for sha in shas[:3]])
    assert [p.name for p in written.parent.iterdir()] == [written.name]


def test_a_second_call_returns_the_same_bytes_from_the_file(tmp_path, stored):
    files, shas = stored
    first = MontageCache(tmp_path / "montages", files).get(EVENT_ID, shas[:4])

    for path in (files.root / "thumbs").iterdir():
        path.unlink()  # a rebuild could no longer succeed: the bytes must come from the file
    again = MontageCache(tmp_path / "montages", files).get(EVENT_ID, shas[:4])

    assert again == first


def test_building_the_next_version_decodes_only_the_new_thumbnail(tmp_path, stored):
    files, shas = stored
    cache = MontageCache(tmp_path / "montages", files)
    cache.get(EVENT_ID, shas[:4])

    for sha in shas[:4]:
        files.path("thumb", sha).unlink()  # only the LRU still holds these
    montage = cache.get(EVENT_ID, shas[:5])

    assert montage == compose_montage(thumbs(5))


def test_a_damaged_thumbnail_file_is_refused_rather_than_drawn(tmp_path, stored):
    files, shas = stored
    files.path("thumb", shas[0]).write_bytes(thumbs(2)[1])

    with pytest.raises(ValueError):
        MontageCache(tmp_path / "montages", files).get(EVENT_ID, shas[:1])


@pytest.mark.parametrize("event_id", ["../escape", "ABCDEF", "", "a/b", "abc.def", "3f2c 7a10"])
def test_the_cache_rejects_an_event_id_that_is_not_lowercase_hex_and_dashes(tmp_path, stored, event_id):
    files, shas = stored

    with pytest.raises(ValueError):
        MontageCache(tmp_path / "montages", files).get(event_id, shas[:1])
    assert not (tmp_path / "montages").exists()


def test_the_cache_rejects_a_thumbnail_sha_that_could_leave_the_folder(tmp_path, stored):
    files, shas = stored

    with pytest.raises(ValueError):
        MontageCache(tmp_path / "montages", files).get(EVENT_ID, [shas[0], "../" + shas[1][3:]])


def test_threads_building_versions_at_once_all_get_the_right_montages(tmp_path, stored):
    files, shas = stored
    cache = MontageCache(tmp_path / "montages", files, decoded_capacity=4)
    results: dict[int, bytes] = {}
    errors = []

    def build(n: int) -> None:
        try:
            results[n] = cache.get(EVENT_ID, shas[:n])
        except Exception as error:  # surfaced by the assertion below
            errors.append(error)

    workers = [threading.Thread(target=build, args=(n,)) for n in range(1, 11) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert errors == []
    every_thumb = [files.read("thumb", sha) for sha in shas]
    for n in range(1, 11):
        assert results[n] == compose_montage(every_thumb[:n]), n
