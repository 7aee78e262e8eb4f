"""Drawing the keepsake collage from the stored photos, in two renditions.

A rendition is a pure function of the photos' bytes in version order: the layout is integer
arithmetic (eventstore.collage_layout), each photo is decoded and resampled the same way, and
the JPEG is written with fixed settings and no metadata (no EXIF, no timestamp). So every site
running the same Pillow build draws byte-identical collages (invariant 2).

Memory stays bounded: the canvas is the one large image; photos are decoded one at a time, at
the smallest JPEG DCT scale (1/2, 1/4, 1/8) that still covers their cell (Image.draft), resampled
to the cell, pasted and dropped.

The screen rendition draws a cell from the photo's thumbnail (made with it at upload, shipped
with it, the same bytes everywhere) when the thumbnail covers the cell (`covers`): decoding a
stored photo costs its file size in entropy decoding whatever the DCT scale (~15 ms for a
1.1 MB one at 1/4), its 512 px thumbnail ~1-2 ms, and a 30-photo montage is ~30 such cells.
The keepsake is always drawn from the photos.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from io import BytesIO

from PIL import Image

from eventstore.collage_layout import Cell, Layout, fit
from eventstore.jpeg_bytes import jpeg_bytes

BACKGROUND = (24, 24, 28)
# Fixed encoder settings: part of what makes the bytes the same on every site.
JPEG_SETTINGS = {"quality": 88, "subsampling": "4:2:0", "optimize": False, "progressive": False}


@dataclass(frozen=True)
class Rendition:
    """A size of the collage: the keepsake itself, or the lighter one pages show."""

    name: str
    long_edge: int
    max_pixels: int
    # The filter for shrinking: bicubic for the keepsake (sharp near 1:1); box (area averaging)
    # for the screen rendition, ~35 % cheaper than bilinear, and resampling is most of its build
    # time (benchmarks/README.md). Enlarging always takes bicubic.
    resample: Image.Resampling


# The keepsake: up to 8192 px on its long edge and 32 MP (a ~96 MB canvas while it is drawn),
# and never more pixels than the photos carry together.
FULL = Rendition("full", 8192, 32_000_000, Image.Resampling.BICUBIC)
# What pages show (and what srcset offers small screens): ~1600 px, quick to draw and to load.
SCREEN = Rendition("screen", 1600, 1600 * 1600, Image.Resampling.BOX)
RENDITIONS = {r.name: r for r in (FULL, SCREEN)}


def photo_size(data_or_path) -> tuple[int, int]:
    """A stored photo's (width, height), read from its header without decoding it."""
    source = BytesIO(data_or_path) if isinstance(data_or_path, bytes) else data_or_path
    with Image.open(source, formats=["JPEG"]) as image:
        return image.size


def layout_for(sizes: Sequence[tuple[int, int]], rendition: Rendition) -> Layout:
    return fit(sizes, long_edge=rendition.long_edge, max_pixels=rendition.max_pixels,
               source_pixels=sum(w * h for w, h in sizes))


def compose_collage(photos: Sequence[bytes], rendition: Rendition = FULL,
                    thumbs: Sequence[bytes] = ()) -> bytes:
    """The collage of these photos (stored JPEGs, in version order) as a JPEG; the screen
    rendition takes a cell from its photo's thumbnail (`thumbs`, in the same order, if given)
    where the thumbnail covers the cell."""
    layout = layout_for([photo_size(p) for p in photos], rendition)

    def picture(cell: Cell) -> Image.Image:
        source = photos[cell.index]
        if thumbs and rendition is not FULL and covers(photo_size(thumbs[cell.index]), cell):
            source = thumbs[cell.index]
        with opened(source, cell) as image:
            image.load()
            return fitted(image, cell, rendition)

    return draw(layout, picture)


def draw(layout: Layout, picture: Callable[[Cell], Image.Image]) -> bytes:
    """Draw the layout row by row; picture(cell) gives one photo at its cell's size, asked for
    only when it is pasted, so one decoded photo is held at a time."""
    canvas = Image.new("RGB", (layout.width, layout.height), BACKGROUND)
    for row in layout.rows:
        for cell in row:
            canvas.paste(picture(cell), (cell.x, cell.y))
    return jpeg_bytes(canvas, **JPEG_SETTINGS)  # the same bytes, with the interpreter lock let go


def covers(size: tuple[int, int], cell: Cell) -> bool:
    """Whether an image of `size` fills the cell without being enlarged."""
    return size[0] >= cell.width and size[1] >= cell.height


def opened(data: bytes, cell: Cell) -> Image.Image:
    """The photo, opened (not decoded yet) at the smallest DCT scale whose result still covers
    the cell: its size tells which decode it will be, so decodes can be cached by it."""
    image = Image.open(BytesIO(data), formats=["JPEG"])
    image.draft("RGB", (cell.width, cell.height))
    return image


def drafted_size(size: tuple[int, int], cell: Cell) -> tuple[int, int]:
    """The size `opened` gives a photo of `size` for `cell`, from the size alone: Pillow's JPEG
    draft takes the largest scale 1/8, 1/4, 1/2 or 1 that keeps both edges at least the cell's,
    rounding up (JpegImageFile.draft; checked against it in tests/unit/test_montage.py)."""
    width, height = size
    scale = min(width // cell.width, height // cell.height)
    s = next(s for s in (8, 4, 2, 1) if scale >= s or s == 1)
    return (width + s - 1) // s, (height + s - 1) // s


def fitted(image: Image.Image, cell: Cell, rendition: Rendition) -> Image.Image:
    """A decoded photo resampled to exactly its cell (the layout keeps the aspect ratio to
    within a pixel, so this never visibly stretches)."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    if image.size == (cell.width, cell.height):
        return image
    shrinking = image.width >= cell.width and image.height >= cell.height
    resample = rendition.resample if shrinking else Image.Resampling.BICUBIC
    return image.resize((cell.width, cell.height), resample)
