"""Stored photos for the collage and montage tests: distinct colours, landscape and portrait."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

from PIL import Image

from eventstore.imaging import NormalizedPhoto, normalize_upload
from tests import images

PROJECT_ROOT = Path(__file__).resolve().parents[2]
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
