"""Reading form bodies (url-encoded or multipart) as sent by browsers and by anyone else.

aiohttp parses them lazily and says a body is malformed with several exceptions of its own (a
part header with a control character or no colon, a bad boundary, an unknown encoding, an
undecodable charset); all of them are bad input: `InvalidRequest`, a 400, never a 500.
"""

from __future__ import annotations

import zlib
from contextlib import contextmanager

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDictProxy

from domain.errors import InvalidRequest

MALFORMED = (HttpProcessingError, ValueError, LookupError, AssertionError, RuntimeError, zlib.error)


@contextmanager
def malformed_body_is_invalid(message: str):
    """Within: aiohttp's complaints about the body become InvalidRequest(message)."""
    try:
        yield
    except MALFORMED:
        raise InvalidRequest(message) from None


async def read_form(request: web.Request) -> MultiDictProxy:
    """The posted form's fields; InvalidRequest when the body is not a well-formed form."""
    with malformed_body_is_invalid("The form could not be read; send it again from the page."):
        return await request.post()
