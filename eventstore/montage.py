"""The montage files: each version's keepsake collage, in two renditions, built once per site.

Montage version n is the collage (eventstore.collage) of the event's first n stored photos, a
pure function of their bytes: every site renders byte-identical files (invariant 2), and a lost
file can always be rebuilt. Files live under root/<event_id>/, named by the version, the
rendition and a digest of the photos' sha256s.

Two threads asking for the same missing file wait for one build rather than making two; full
renditions (the large canvases) are built one at a time per site, which bounds the memory.
Builds run on the cache's own threads (`pool`), so a queue of keepsakes to draw never holds up
the default executor's threads, which the site's store and files need.
The screen rendition is rebuilt at every commit, with all but the new photo seen before. It
takes a cell from the photo's thumbnail where the thumbnail covers it (eventstore.collage), so
its file's name covers the thumbnails too (`thumb_shas`). The photos and thumbnails decoded
for it are kept in a small LRU bounded by bytes, found again without reading or parsing their
files (the size a JPEG decodes to at a cell's scale is known from its header), and each file's
bytes are checked against its name once per process, when first read.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from eventstore.collage import (
    FULL,
    Rendition,
    covers,
    draw,
    drafted_size,
    fitted,
    layout_for,
    opened,
    photo_size,
)
from eventstore.collage_layout import Cell, Layout
from eventstore.photo_files import PhotoFiles, check_sha256, write_atomically

_EVENT_ID = re.compile(r"[0-9a-f-]{1,128}")
DECODED_BUDGET = 48 * 2**20  # bytes of decoded photos kept for the next screen rendition
SIZES_KEPT = 4096  # photo sizes (read from JPEG headers) remembered for layouts
VERIFIED_KEPT = 16384  # photo files whose bytes were checked against their names (then not again)

log = logging.getLogger(__name__)


class MontageCache:
    def __init__(self, root: Path, files: PhotoFiles, *, decoded_budget: int = DECODED_BUDGET):
        self.root = Path(root)
        self.files = files
        self._decoded = _DecodedPhotos(decoded_budget)
        self._sizes: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._verified: OrderedDict[str, None] = OrderedDict()  # files read whole and checked
        self._lock = threading.Lock()  # guards the two tables below, self._sizes and self._verified
        self._building: dict[Path, threading.Lock] = {}
        self._waiters: dict[Path, int] = {}
        self._full_builds = threading.Semaphore(1)
        self._pools: dict[str, ThreadPoolExecutor] = {}

    def pool(self, rendition: Rendition) -> ThreadPoolExecutor:
        """The threads that build this rendition: one for the keepsake (its canvas is large and
        building it takes seconds), two for the screen rendition (pages wait for it)."""
        with self._lock:
            if rendition.name not in self._pools:
                workers = 1 if rendition is FULL else 2
                self._pools[rendition.name] = ThreadPoolExecutor(workers, f"montage-{rendition.name}")
            return self._pools[rendition.name]

    def path(self, event_id: str, photo_shas: Sequence[str], rendition: Rendition,
             thumb_shas: Sequence[str] = ()) -> Path:
        """The montage's file: named by its version, its rendition and a digest of what it is
        drawn from (the photos, and for the screen rendition their thumbnails if given)."""
        if not isinstance(event_id, str) or not _EVENT_ID.fullmatch(event_id):
            raise ValueError(f"not an event id: {event_id!r}")
        for sha in (*photo_shas, *thumb_shas):
            check_sha256(sha)  # before the shas are hashed into a name
        sources = "".join(photo_shas)
        if rendition is not FULL and thumb_shas:
            if len(thumb_shas) != len(photo_shas):
                raise ValueError("one thumbnail per photo")
            sources += "+" + "".join(thumb_shas)
        digest = hashlib.sha256(sources.encode("ascii")).hexdigest()
        return self.root / event_id / f"v{len(photo_shas)}-{rendition.name}-{digest[:16]}.jpg"

    def has(self, event_id: str, photo_shas: Sequence[str], rendition: Rendition,
            thumb_shas: Sequence[str] = ()) -> bool:
        return self.path(event_id, photo_shas, rendition, thumb_shas).is_file()

    def cached(self, event_id: str, photo_shas: Sequence[str], rendition: Rendition,
               thumb_shas: Sequence[str] = ()) -> bytes | None:
        """The montage's bytes if its file is there, else None (nothing is built)."""
        try:
            return self.path(event_id, photo_shas, rendition, thumb_shas).read_bytes()
        except FileNotFoundError:
            return None

    def get(self, event_id: str, photo_shas: Sequence[str], rendition: Rendition = FULL,
            thumb_shas: Sequence[str] = ()) -> bytes:
        """Montage version len(photo_shas) of the event, from disk or freshly composed."""
        target = self.path(event_id, photo_shas, rendition, thumb_shas)
        try:
            return target.read_bytes()
        except FileNotFoundError:
            pass
        with self._build_lock(target):
            try:
                return target.read_bytes()  # another thread built it while this one waited
            except FileNotFoundError:
                pass
            if rendition is FULL:
                with self._full_builds:
                    montage = self._compose(photo_shas, rendition, thumb_shas)
            else:
                montage = self._compose(photo_shas, rendition, thumb_shas)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                # Derived data: no fsync; a montage lost in a crash is composed again.
                write_atomically(target, montage, durable=False)
            except OSError as e:  # a full or read-only disk: serve it anyway, cache it next time
                log.warning("montage %s not cached: %s", target.name, e)
            return montage

    def layout(self, photo_shas: Sequence[str], rendition: Rendition) -> Layout:
        """Where each photo goes (and so the image's size), without drawing anything."""
        return layout_for([self._size(sha) for sha in photo_shas], rendition)

    def _compose(self, photo_shas: Sequence[str], rendition: Rendition, thumb_shas: Sequence[str]) -> bytes:
        if rendition is FULL:  # the keepsake: always the photos themselves
            thumb_shas = ()

        def picture(cell: Cell) -> Image.Image:
            kind, sha = "photo", photo_shas[cell.index]
            if thumb_shas and covers(self._size(thumb_shas[cell.index], "thumb"), cell):
                kind, sha = "thumb", thumb_shas[cell.index]
            return self._picture(kind, sha, cell, rendition)

        return draw(self.layout(photo_shas, rendition), picture)

    def _picture(self, kind: str, sha: str, cell: Cell, rendition: Rendition) -> Image.Image:
        if rendition is not FULL:  # decoded before at this cell's scale: no file read or parsed
            decoded = self._decoded.get((sha, drafted_size(self._size(sha, kind), cell)))
            if decoded is not None:
                return fitted(decoded, cell, rendition)
        data = self._read(kind, sha)
        with opened(data, cell) as image:
            if rendition is FULL:  # one use each, and large: not worth keeping
                image.load()
                return fitted(image, cell, rendition)
            key = (sha, image.size)
            decoded = self._decoded.get(key)
            if decoded is None:
                image.load()
                decoded = self._decoded.put(key, image)
        return fitted(decoded, cell, rendition)

    def _read(self, kind: str, sha: str) -> bytes:
        """The file's bytes (a photo or a thumbnail), checked against its name when this
        process first reads it: a damaged file would make this site's montage differ from every
        other site's. (Files are written whole under their names, never changed: once right,
        right from then on.)"""
        data = self.files.read(kind, sha)
        with self._lock:
            known = sha in self._verified
        if not known:
            if hashlib.sha256(data).hexdigest() != sha:
                raise ValueError(f"{kind} file {sha} does not match its name")
            with self._lock:
                self._verified[sha] = None
                while len(self._verified) > VERIFIED_KEPT:
                    self._verified.popitem(last=False)
        return data

    def know_size(self, sha: str, size: tuple[int, int]) -> None:
        """A file's (width, height) known where it was made (an upload's photo and thumbnail,
        normalised here): its montage is drawn without opening the file to read its header."""
        with self._lock:
            self._sizes[sha] = size
            while len(self._sizes) > SIZES_KEPT:
                self._sizes.popitem(last=False)

    def _size(self, sha: str, kind: str = "photo") -> tuple[int, int]:
        with self._lock:
            size = self._sizes.get(sha)
        if size is None:
            size = photo_size(self.files.path(kind, sha))
            self.know_size(sha, size)
        return size

    def _build_lock(self, target: Path) -> _KeyLock:
        return _KeyLock(self, target)


class _KeyLock:
    """Held while one montage file is built; dropped from the table when nobody waits on it."""

    def __init__(self, cache: MontageCache, key: Path):
        self.cache, self.key = cache, key

    def __enter__(self) -> None:
        with self.cache._lock:
            lock = self.cache._building.setdefault(self.key, threading.Lock())
            self.cache._waiters[self.key] = self.cache._waiters.get(self.key, 0) + 1
        lock.acquire()

    def __exit__(self, *exc) -> None:
        with self.cache._lock:
            self.cache._building[self.key].release()
            self.cache._waiters[self.key] -= 1
            if not self.cache._waiters[self.key]:
                del self.cache._waiters[self.key], self.cache._building[self.key]


class _DecodedPhotos:
    """An LRU of decoded photos, keyed by (sha256, decoded size), bounded by their bytes."""

    def __init__(self, budget: int):
        self.budget = budget
        self._images: OrderedDict[tuple, Image.Image] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple) -> Image.Image | None:
        with self._lock:
            image = self._images.get(key)
            if image is not None:
                self._images.move_to_end(key)
            return image

    def put(self, key: tuple, image: Image.Image) -> Image.Image:
        """Keep a decoded image (fully loaded, so threads may share it read-only); returns it."""
        cost = image.width * image.height * len(image.getbands())
        with self._lock:
            if key not in self._images and cost <= self.budget:
                self._images[key] = image
                self._bytes += cost
                while self._bytes > self.budget:
                    _, dropped = self._images.popitem(last=False)
                    self._bytes -= dropped.width * dropped.height * len(dropped.getbands())
        return image
