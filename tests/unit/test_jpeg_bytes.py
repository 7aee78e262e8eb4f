"""eventstore.jpeg_bytes: the encoder's own bytes, encoded into a real file descriptor."""

from __future__ import annotations

import os
from io import BytesIO

import pytest
from PIL import Image, ImageFile

from eventstore.collage import JPEG_SETTINGS
from eventstore.jpeg_bytes import jpeg_bytes
from tests import images


def through_bytesio(image: Image.Image, **settings) -> bytes:
    out = BytesIO()
    image.save(out, "JPEG", **settings)
    return out.getvalue()


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    image = Image.open(BytesIO(images.photo_jpeg(1200, 900, seed=4)))
    image.load()
    return image


@pytest.mark.parametrize("settings", [{"quality": 90}, {"quality": 85}, JPEG_SETTINGS],
                         ids=["stored photo", "thumbnail", "collage"])
def test_the_bytes_are_those_pillow_writes_into_memory(photo, settings):
    # The collage's renditions are byte-identical on every site only if this holds.
    assert jpeg_bytes(photo, **settings) == through_bytesio(photo, **settings)


def test_without_memfd_a_temporary_file_gives_the_same_bytes(photo, monkeypatch):
    monkeypatch.delattr(os, "memfd_create", raising=False)
    assert jpeg_bytes(photo, quality=90) == through_bytesio(photo, quality=90)


def test_pillow_is_handed_a_file_descriptor_so_it_encodes_without_the_interpreter_lock(photo, monkeypatch):
    # Pillow's ImageFile._save encodes with encode_to_file (the lock let go) when the file has a
    # descriptor, and chunk by chunk into Python objects (the lock held) when it has none.
    seen = []
    encode_tile = ImageFile._encode_tile

    def watched(im, fp, tile, bufsize, fh, exc=None):
        seen.append(fh)
        return encode_tile(im, fp, tile, bufsize, fh, exc)

    monkeypatch.setattr(ImageFile, "_encode_tile", watched)
    jpeg_bytes(photo, quality=90)
    through_bytesio(photo, quality=90)
    assert isinstance(seen[0], int) and seen[1] is None


def test_a_large_image_comes_back_whole():
    image = Image.effect_noise((3000, 2000), 80).convert("RGB")  # noise: a JPEG of several MB
    data = jpeg_bytes(image, quality=95)
    assert len(data) > 2_000_000 and data == through_bytesio(image, quality=95)
    assert Image.open(BytesIO(data)).size == (3000, 2000)
