"""Reading an upload: multipart parts named `photo`, each capped while it streams in."""

from __future__ import annotations

from aiohttp import web

from domain.errors import InvalidRequest, TooLarge

MAX_FILES = 20
CHUNK = 256 * 1024


async def read_photo_parts(request: web.Request, max_bytes: int) -> list[bytes]:
    """The bytes of every `photo` part; TooLarge as soon as one passes max_bytes."""
    if request.content_length and request.content_length > MAX_FILES * (max_bytes + CHUNK):
        raise TooLarge()
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError, KeyError) as e:
        raise InvalidRequest(f"Send photos as multipart/form-data parts named 'photo' ({e}).")
    files = []
    while True:
        part = await reader.next()
        if part is None:
            break
        if getattr(part, "name", None) != "photo":
            continue  # unknown parts are read past, not stored
        data = bytearray()
        while chunk := await part.read_chunk(CHUNK):
            data += chunk
            if len(data) > max_bytes:
                raise TooLarge(f"Each photo may be at most {max_bytes // (1024 * 1024)} MB.")
        files.append(bytes(data))
        if len(files) > MAX_FILES:
            raise InvalidRequest(f"At most {MAX_FILES} photos per upload.")
    if not files:
        raise InvalidRequest("No part named 'photo' in the upload.")
    return files
