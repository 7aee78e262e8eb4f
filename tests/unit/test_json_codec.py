"""The JSON API's codec (web.json_codec): the same JSON as the standard library's, and the same
bodies accepted and refused."""

from __future__ import annotations

import json

import pytest

from web.json_codec import dumps, json_response, loads

ANSWERS = [
    {"event_id": "e", "title": "Été à Zürich ☀", "photos": [], "vote": None, "n": 3, "ok": True},
    {"photos": ({"photo_id": "p", "version": 1},), "montage_version": 1},
    {"error": "invalid_title", "message": "The title \"x\"\n is\tbad </script> \u2028"},
    [1, 2.5, -0.0, 10**20],
]


@pytest.mark.parametrize("data", ANSWERS)
def test_an_answer_is_the_json_the_standard_library_would_write(data):
    response = json_response(data, status=201)

    assert response.status == 201
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(response.body) == json.loads(json.dumps(data))
    assert json.loads(dumps(data)) == json.loads(json.dumps(data))


@pytest.mark.parametrize("body", [
    b'{"title": "Picnic"}', b'{"a": 1, "a": 2}', b'{"n": 123456789012345678901234567890}',
    b' {"x": [1, {"y": null}]} ', b'{"x": NaN}', b'{"x": 1e400}', b'{"s": "\\ud800"}',
    '{"é": 1}'.encode("utf-16"), b"[]", b'"text"',
])
def test_a_body_is_parsed_as_the_standard_library_parses_it(body):
    assert repr(loads(body)) == repr(json.loads(body))


@pytest.mark.parametrize("body", [b"{", b'{"a": 1} x', b"\xff\xfe\xfd", b"", b"{'a': 1}", b"[" * 100_000])
def test_a_body_the_standard_library_refuses_is_refused(body):
    with pytest.raises((ValueError, UnicodeDecodeError, RecursionError)):
        json.loads(body)
    with pytest.raises((ValueError, UnicodeDecodeError, RecursionError)):
        loads(body)
