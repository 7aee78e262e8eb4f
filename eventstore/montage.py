"""The montage: every photo's thumbnail on a grid, in version order.

Montage version n is a pure function of the first n thumbnails' bytes, so every site renders
a byte-identical image (invariant 2) and a lost montage file can always be rebuilt.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
from collections import OrderedDict
from io import BytesIO
from pathlib import Path
from typing import Sequence

from PIL import Image

from eventstore.imaging import THUMB_CELL, THUMB_QUALITY
from eventstore.photo_files import PhotoFiles, write_atomically

GAP = 6
MARGIN = 6
BACKGROUND = (24, 24, 28)
_EVENT_ID = re.compile(r"[0-9a-f-]{1,128}")

log = logging.getLogger(__name__)


def compose_montage(thumbs: Sequence[bytes]) -> bytes:
    """A JPEG grid of the thumbnails, left to right, top to bottom."""
    return _compose([_decode(thumb) for thumb in thumbs])


def grid_shape(n: int) -> tuple[int, int]:
    """(columns, rows): as square as the count allows."""
    if n <= 0:
        raise ValueError("a montage needs at least one thumbnail")
    columns = math.isqrt(n - 1) + 1  # ceil(sqrt(n)) without floating point
    return columns, math.ceil(n / columns)


def _compose(images: Sequence[Image.Image]) -> bytes:
    columns, rows = grid_shape(len(images))
    pitch = THUMB_CELL + GAP
    size = (2 * MARGIN + columns * pitch - GAP, 2 * MARGIN + rows * pitch - GAP)
    canvas = Image.new("RGB", size, BACKGROUND)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        left = MARGIN + column * pitch + (THUMB_CELL - image.width) // 2
        top = MARGIN + row * pitch + (THUMB_CELL - image.height) // 2
        canvas.paste(image, (left, top))
    out = BytesIO()
    canvas.save(out, "JPEG", quality=THUMB_QUALITY)
    return out.getvalue()


def _decode(thumb: bytes) -> Image.Image:
    with Image.open(BytesIO(thumb), formats=["JPEG"]) as opened:
        image = opened.convert("RGB")  # fully loaded, so threads may share it read-only
    if image.width > THUMB_CELL or image.height > THUMB_CELL:
        image.thumbnail((THUMB_CELL, THUMB_CELL), Image.Resampling.LANCZOS)
    return image


class MontageCache:
    """Montage files under root/<event_id>/, built on demand from the stored thumbnails.

    Versions of one event share all but their last thumbnail, so decoded thumbnails are kept
    in a small LRU: building version n+1 after version n decodes one image.
    """

    def __init__(self, root: Path, files: PhotoFiles, *, decoded_capacity: int = 64):
        self.root = Path(root)
        self.files = files
        self._capacity = decoded_capacity
        self._decoded: OrderedDict[str, Image.Image] = OrderedDict()
        self._lock = threading.Lock()

    def path(self, event_id: str, thumb_shas: Sequence[str]) -> Path:
        if not isinstance(event_id, str) or not _EVENT_ID.fullmatch(event_id):
            raise ValueError(f"not an event id: {event_id!r}")
        digest = hashlib.sha256("".join(thumb_shas).encode("ascii")).hexdigest()
        return self.root / event_id / f"v{len(thumb_shas)}-{digest[:16]}.jpg"

    def get(self, event_id: str, thumb_shas: Sequence[str]) -> bytes:
        """Montage version len(thumb_shas) of the event, from disk or freshly composed."""
        for sha in thumb_shas:
            self.files.path("thumb", sha)  # validates before the shas are hashed into a name
        target = self.path(event_id, thumb_shas)
        try:
            return target.read_bytes()
        except FileNotFoundError:
            pass
        montage = _compose([self._decoded_thumb(sha) for sha in thumb_shas])
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # Derived data: no fsync; a montage lost in a crash is composed again.
            write_atomically(target, montage, durable=False)
        except OSError as e:  # a full or read-only disk: serve it anyway, cache it next time
            log.warning("montage %s not cached: %s", target.name, e)
        return montage

    def _decoded_thumb(self, sha: str) -> Image.Image:
        with self._lock:
            image = self._decoded.get(sha)
            if image is not None:
                self._decoded.move_to_end(sha)
                return image
        # Decoded outside the lock so threads building other events are not held up; two
        # threads decoding the same thumbnail at once merely do the work twice.
        data = self.files.read("thumb", sha)
        if hashlib.sha256(data).hexdigest() != sha:
            # A damaged file would make this site's montage differ from every other site's.
            raise ValueError(f"thumbnail file {sha} does not match its name")
        image = _decode(data)
        with self._lock:
            self._decoded[sha] = image
            self._decoded.move_to_end(sha)
            while len(self._decoded) > self._capacity:
                self._decoded.popitem(last=False)
        return image
