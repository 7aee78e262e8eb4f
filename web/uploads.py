"""Reading an upload: multipart parts named `photo`, each capped while it streams in.

The JSON API takes nothing else (API.md: parts named `photo`); the page's form may carry other
fields, which are read past.
"""

from __future__ import annotations

from aiohttp import web

from domain.errors import InvalidRequest, TooLarge
from web.forms import malformed_body_is_invalid

MAX_FILES = 20
CHUNK = 256 * 1024
MALFORMED_UPLOAD = "Send photos as multipart/form-data parts named 'photo'."


async def read_photo_parts(request: web.Request, max_bytes: int, only_photos: bool = False) -> list[bytes]:
    """The bytes of every `photo` part; TooLarge as soon as one passes max_bytes; with
    only_photos, InvalidRequest for a part of another name."""
    if request.content_length and request.content_length > MAX_FILES * (max_bytes + CHUNK):
        raise TooLarge()
    with malformed_body_is_invalid(MALFORMED_UPLOAD):
        reader = await request.multipart()
        files = [data async for data in _photo_parts(reader, max_bytes, only_photos)]
    if not files:
        raise InvalidRequest("No part named 'photo' in the upload.")
    return files


async def _photo_parts(reader, max_bytes: int, only_photos: bool):
    count = 0
    while (part := await reader.next()) is not None:
        if getattr(part, "name", None) != "photo":
            if only_photos:
                raise InvalidRequest("An upload holds only parts named 'photo'.")
            continue  # the form's other fields are read past, not stored
        count += 1
        if count > MAX_FILES:
            raise InvalidRequest(f"At most {MAX_FILES} photos per upload.")
        # Kept as the chunks come and joined once: a bytearray grown chunk by chunk is copied
        # whole at each growth that cannot stay in place (~1/3 of reading a 3.4 MB photo).
        chunks, size = [], 0
        while chunk := await part.read_chunk(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise TooLarge(f"Each photo may be at most {max_bytes // (1024 * 1024)} MB.")
            chunks.append(chunk)
        yield b"".join(chunks)
