"""Test images made in memory, each a few lines away from the property a test relies on."""

from __future__ import annotations

import functools
import random
import struct
import zlib
from io import BytesIO

from PIL import Image, ImageChops

RED = (220, 30, 30)
BLUE = (30, 30, 220)
# Paris, so a leak is recognisable: degrees, minutes, seconds.
GPS_LATITUDE = (48.0, 51.0, 24.0)


def _picture(w: int, h: int, color, right_color=None) -> Image.Image:
    image = Image.new("RGB", (w, h), color)
    if right_color is not None:
        image.paste(right_color, (w // 2, 0, w, h))
    return image


def jpeg_bytes(w: int, h: int, color=RED, orientation=None, gps=False, right_color=None,
               comment=None) -> bytes:
    """A JPEG, optionally carrying an EXIF orientation, a GPS position and a comment.

    right_color paints the right half, so a test can tell which way the image was turned.
    """
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    if gps:
        exif[0x8825] = {1: "N", 2: GPS_LATITUDE, 3: "E", 4: (2.0, 21.0, 3.0)}
    extra = {"comment": comment} if comment is not None else {}
    out = BytesIO()
    _picture(w, h, color, right_color).save(out, "JPEG", quality=95, exif=exif, **extra)
    return out.getvalue()


def png_bytes(w: int, h: int, color=BLUE, mode="RGB") -> bytes:
    image = _picture(w, h, color).convert(mode)
    out = BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def transparent_png(w: int, h: int) -> bytes:
    """Fully transparent pixels whose colour channels are black."""
    out = BytesIO()
    Image.new("RGBA", (w, h), (0, 0, 0, 0)).save(out, "PNG")
    return out.getvalue()


def webp_bytes(w: int, h: int, color=(30, 160, 60)) -> bytes:
    out = BytesIO()
    _picture(w, h, color).save(out, "WEBP", quality=90)
    return out.getvalue()


def truncated_jpeg() -> bytes:
    """A JPEG cut in the middle of its scan data: the header still reads fine."""
    whole = jpeg_bytes(640, 480, color=(90, 120, 150), right_color=(200, 200, 40))
    return whole[: len(whole) // 2]


@functools.lru_cache(maxsize=None)
def bomb_png(w: int, h: int) -> bytes:
    """A 1-bit black PNG of w x h pixels that compresses to almost nothing.

    Written chunk by chunk with zlib rather than through Pillow: Pillow would first hold the
    whole image in memory (one byte per pixel, 144 MB at 12000 x 12000).
    """
    row = b"\x00" + bytes((w + 7) // 8)  # filter type "none", then the packed bits
    packer = zlib.compressobj(9)
    scan = b"".join(packer.compress(row) for _ in range(h)) + packer.flush()
    header = struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", scan) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def text_file() -> bytes:
    return b"These are holiday notes, not a photo.\n" * 20


def photo_jpeg(width: int, height: int, seed: int = 0, quality: int = 92) -> bytes:
    """Photo-like content (gradients plus noise) that compresses about like a real photo."""
    rng = random.Random(seed)
    ramp = Image.linear_gradient("L").resize((width, height))
    other = Image.linear_gradient("L").rotate(90 + rng.randint(0, 90)).resize((width, height))
    noise = Image.effect_noise((width, height), 30)  # sigma 30 blended at 0.24: ~3.5 MB at 12 MP
    red = Image.blend(ramp, noise, 0.24)
    green = Image.blend(other, noise.transpose(Image.Transpose.FLIP_LEFT_RIGHT), 0.24)
    blue = Image.blend(ramp.transpose(Image.Transpose.FLIP_TOP_BOTTOM), noise, 0.24)
    out = BytesIO()
    Image.merge("RGB", [red, green, blue]).save(out, "JPEG", quality=quality)
    return out.getvalue()


def share_close_to(image: Image.Image, colour, tolerance: int = 24) -> float:
    """The share of an RGB image's pixels within `tolerance` of `colour` on every channel."""
    difference = ImageChops.difference(image.convert("RGB"), Image.new("RGB", image.size, colour))
    red, green, blue = difference.split()
    worst = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    return sum(worst.histogram()[:tolerance + 1]) / (image.width * image.height)
