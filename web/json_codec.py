"""The JSON API's codec: msgspec encodes every answer and parses request bodies.

Answers are the JSON json.dumps would write, as UTF-8 rather than \\u escapes, with aiohttp's
content type (application/json; charset=utf-8). Bodies are parsed by msgspec; one it refuses is
parsed again by the standard library, which decides, so what is accepted and what is bad input
(NaN, a UTF-16 body, a lone surrogate) stays exactly as it was.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from aiohttp import web

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def json_response(data: Any, *, status: int = 200, headers=None) -> web.Response:
    return web.Response(body=_encode(data), status=status, headers=headers,
                        content_type="application/json", charset="utf-8")


def dumps(data: Any) -> str:
    return _encode(data).decode()


def loads(body: bytes) -> Any:
    """The parsed body; ValueError, UnicodeDecodeError or RecursionError as json.loads raises."""
    try:
        return _decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return json.loads(body)
