"""A JPEG's bytes from Pillow without holding the interpreter lock while it is encoded.

Pillow encodes into a Python object (a BytesIO) chunk by chunk with the interpreter lock held:
a 2000x1500 stored photo is ~13-17 ms during which nothing else of the site's Python runs, its
event loop included (measured here: two threads encoding to BytesIO take twice as long as one).
Into a real file descriptor it encodes in one call that lets go of the lock (Pillow's
`encode_to_file`), so threads encode side by side and the loop goes on. So the image is encoded
into an anonymous in-memory file (Linux `memfd_create`; elsewhere a temporary file) and read back.
The bytes are the encoder's own either way: the same settings give the same bytes, which the
collage's byte-identical renditions rely on (tests/unit/test_jpeg_bytes.py).
"""

from __future__ import annotations

import os
import tempfile

from PIL import Image


def jpeg_bytes(image: Image.Image, **settings) -> bytes:
    """`image` encoded as a JPEG with Pillow's `settings` (quality, subsampling, ...)."""
    with _scratch_file() as out:
        image.save(out, "JPEG", **settings)
        out.flush()
        return _read_all(out.fileno())


def _scratch_file():
    if hasattr(os, "memfd_create"):
        return open(os.memfd_create("jpeg", os.MFD_CLOEXEC), "w+b")
    return tempfile.TemporaryFile()


def _read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    parts, offset = [], 0
    while offset < size:
        part = os.pread(fd, size - offset, offset)
        if not part:
            break
        parts.append(part)
        offset += len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)
