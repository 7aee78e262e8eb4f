"""Turn an uploaded file into the canonical stored photo and its thumbnail.

The canonical photo is a fresh JPEG re-encoded by Pillow: whatever metadata the upload carried
(EXIF, GPS, XMP, ICC, comments) is left behind, and its orientation is baked into the pixels.
The result is a pure function of the uploaded bytes, so every site derives the same sha256s.

A large JPEG is decoded at a reduced scale (libjpeg's DCT scaling: 1/2, 1/4, 1/8) chosen so the
long edge stays at least STORED_MIN_EDGE pixels: a 4000x3000 upload is stored at 2000x1500. That
is web size for a photo and ample for the montage, and it is what keeps an upload fast: the
12 MP decode and re-encode cost ~140-250 ms, the scaled ones ~65 ms (benchmarks/README.md).
Nothing is resampled after the scaled decode (a resampling pass costs as much as it saves).
"""

from __future__ import annotations

import functools
import hashlib
import threading
import warnings
from dataclasses import dataclass
from io import BytesIO

from PIL import Image, ImageOps, UnidentifiedImageError

from domain.errors import InvalidImage, UnsupportedMediaType
from eventstore.jpeg_bytes import jpeg_bytes

# The grid shows a thumbnail as a ~9rem square (cropped to cover): 512 px keeps its short side
# sharp on a 2x phone screen, and covers the screen montage's cells from ~10 photos on, so a
# hot event's montage decodes thumbnails rather than photos (eventstore.montage).
THUMB_CELL = 512
# A 2000 px photo is box-averaged by 3, then Lanczos-resampled 1.3x: ~9 ms against ~13 ms at
# 1.5 (by 2, then 1.95x) and ~32 ms at Pillow's default of 2.0 (no box step at all). Against
# that exact Lanczos thumbnail it is 40-53 dB PSNR on photos (1.5: 48-55), far closer than the
# thumbnail's own q85 encoding is to it (33-40 dB), so no guest tells them apart; only detail
# at every pixel shows it (tests/unit/test_imaging.py; benchmarks/README.md, session 14).
THUMB_REDUCING_GAP = 1.0
STORED_MIN_EDGE = 1600  # a JPEG is decoded at the smallest DCT scale whose long edge is >= this
PHOTO_QUALITY = 90
THUMB_QUALITY = 85
_BASE_FORMATS = ("JPEG", "PNG", "WEBP")
# Flattening onto white rather than dropping alpha: transparent pixels often hold black.
_BACKGROUND = (255, 255, 255)
# warnings.catch_warnings() swaps a process-wide list (until Python 3.14).
_WARNINGS_LOCK = threading.Lock()


@dataclass(frozen=True)
class NormalizedPhoto:
    jpeg: bytes
    thumb: bytes
    sha256: str
    thumb_sha256: str
    width: int
    height: int
    thumb_width: int
    thumb_height: int

    def files(self) -> tuple[tuple[str, str, bytes, tuple[int, int]], ...]:
        """(kind, sha256, bytes, (width, height)) of the photo and of its thumbnail, the files
        eventstore.photo_files keeps of it."""
        return (("photo", self.sha256, self.jpeg, (self.width, self.height)),
                ("thumb", self.thumb_sha256, self.thumb, (self.thumb_width, self.thumb_height)))


def normalize_upload(data: bytes, *, max_pixels: int) -> NormalizedPhoto:
    """Decode, check and re-encode an upload; raise UnsupportedMediaType or InvalidImage."""
    image = _open(data, max_pixels)
    try:
        _decode_scaled(image)
        image.load()
        # In place, as each full-size copy of a 12 MP photo costs ~18 ms.
        ImageOps.exif_transpose(image, in_place=True)
        upright = _flatten_to_rgb(image)
    except Exception as exc:  # any failure to decode hostile bytes is the user's bad image
        raise InvalidImage() from exc
    jpeg = _encode(upright, PHOTO_QUALITY)
    width, height = upright.size
    # The full-resolution pixels are already decoded, so shrinking them in place is cheaper
    # than a second, draft-mode decode of the upload (measured: ~20 ms against ~30-140 ms).
    upright.thumbnail((THUMB_CELL, THUMB_CELL), Image.Resampling.LANCZOS, reducing_gap=THUMB_REDUCING_GAP)
    thumb = _encode(upright, THUMB_QUALITY)
    return NormalizedPhoto(
        jpeg=jpeg,
        thumb=thumb,
        sha256=hashlib.sha256(jpeg).hexdigest(),
        thumb_sha256=hashlib.sha256(thumb).hexdigest(),
        width=width,
        height=height,
        thumb_width=upright.width,
        thumb_height=upright.height,
    )


def _decode_scaled(image: Image.Image) -> None:
    """Ask a JPEG decoder for the smallest scale that keeps the long edge >= STORED_MIN_EDGE."""
    if image.format != "JPEG":
        return
    width, height = image.size
    long_edge = max(width, height)
    if long_edge < 2 * STORED_MIN_EDGE:
        return
    shrink = STORED_MIN_EDGE / long_edge
    # draft() takes the largest reduction r (1, 2, 4, 8) with r <= size // asked on both axes,
    # so the short side is asked for rounded down and the long side exactly.
    image.draft("RGB", (max(1, int(width * shrink)), max(1, int(height * shrink))))


def _looks_like_allowed_format(data: bytes) -> bool:
    return (
        data.startswith(b"\xff\xd8\xff")
        or data.startswith(b"\x89PNG\r\n\x1a\n")
        or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
        or (data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"heif"))
    )


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Identify the format from the allow-list and refuse oversized images before decoding."""
    formats = _allowed_formats()
    try:
        # For these formats Pillow checks the pixel count only here, in open(). Its warning is
        # made an error locally; the lock keeps concurrent calls from restoring each other's
        # saved filter lists out of order, which would leave the error filter set for good.
        with _WARNINGS_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(BytesIO(data), formats=formats)
    except UnidentifiedImageError as exc:
        if _looks_like_allowed_format(data):  # the right kind of file, but broken
            raise InvalidImage() from exc
        raise UnsupportedMediaType() from exc
    except Exception as exc:  # bomb check or a header the plugin choked on
        raise InvalidImage() from exc
    width, height = image.size
    if width * height > max_pixels:
        raise InvalidImage(f"The image has {width}x{height} pixels; at most {max_pixels} are accepted.")
    return image


def ready_decoders() -> tuple[str, ...]:
    """Load the decoders now (pillow_heif's import is ~0.1 s of CPU), not on the first upload:
    a site's start-up, so that a burst of first uploads does not wait behind it."""
    return _allowed_formats()


@functools.cache
def _allowed_formats() -> tuple[str, ...]:
    """The decoder allow-list; HEIF joins it only where pillow_heif is installed.

    Registering the opener is a process-wide change, so it happens on first use, not on import.
    """
    try:
        import pillow_heif
    except ImportError:
        return _BASE_FORMATS
    pillow_heif.register_heif_opener()
    return _BASE_FORMATS + ("HEIF",)


def _flatten_to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, _BACKGROUND + (255,))
        canvas.alpha_composite(rgba)
        rgb = canvas.convert("RGB")
    else:
        rgb = image if image.mode == "RGB" else image.convert("RGB")
    # Pillow's JPEG writer still reads "comment" from info, and convert() copies info.
    rgb.info = {}
    return rgb


def _encode(image: Image.Image, quality: int) -> bytes:
    return jpeg_bytes(image, quality=quality)  # with the interpreter lock let go
