"""One real site in-process: what the OpenAPI fuzzer found. Malformed requests get a clear 4xx
with an API.md error code (never a 5xx, never a 503), and the site's OpenAPI document names
every JSON route it serves."""

import json

import pytest

from web.csrf import csrf_token
from web.openapi import DOCUMENT

BOUNDARY = "fuzzboundary"
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
BROKEN_PART_HEADERS = [
    b'Content-Disposition: form-data; name="\x00\xc2\xbd"',  # a control character
    b"Content-Disposition form-data",  # no colon
]


def multipart_body(part_header: bytes) -> bytes:
    return (f"--{BOUNDARY}\r\n".encode() + part_header + b"\r\n\r\nx\r\n"
            + f"--{BOUNDARY}--\r\n".encode())


async def create_event(client, title: str = "Picnic") -> str:
    resp = await client.post("/api/events", json={"title": title})
    assert resp.status == 201, await resp.text()
    return (await resp.json())["event_id"]


async def my_csrf_token(client) -> str:
    user_id = (await (await client.get("/api/me")).json())["user_id"]
    return csrf_token("cookie-secret", user_id)


async def assert_refused(resp, status: int, code: str) -> None:
    body = await resp.json()
    assert (resp.status, body["error"]) == (status, code), body
    assert body["message"]


async def test_a_title_with_an_unpaired_surrogate_gets_400_invalid_title_not_503(client):
    body = json.dumps({"title": "Picnic \ud800"})  # escaped as \ud800: valid JSON, not valid text
    resp = await client.post("/api/events", data=body, headers={"Content-Type": "application/json"})
    await assert_refused(resp, 400, "invalid_title")


async def test_a_title_over_200_characters_is_refused_even_when_spaces_pad_it(client):
    resp = await client.post("/api/events", json={"title": "x" * 200 + " "})
    await assert_refused(resp, 400, "invalid_title")
    assert (await client.post("/api/events", json={"title": " x "})).status == 201


@pytest.mark.parametrize("part_header", BROKEN_PART_HEADERS)
async def test_an_api_upload_whose_part_header_is_broken_gets_400_not_500(client, part_header):
    event_id = await create_event(client)
    resp = await client.post(f"/api/events/{event_id}/photos", data=multipart_body(part_header),
                             headers=MULTIPART)
    await assert_refused(resp, 400, "invalid_request")


async def test_an_api_upload_with_a_part_not_named_photo_gets_400(client):
    event_id = await create_event(client)
    photo = multipart_body(b'Content-Disposition: form-data; name="photo"; filename="a.jpg"')
    other = multipart_body(b'Content-Disposition: form-data; name="file"')
    body = photo.removesuffix(f"--{BOUNDARY}--\r\n".encode()) + other  # a photo, then another part
    resp = await client.post(f"/api/events/{event_id}/photos", data=body, headers=MULTIPART)
    await assert_refused(resp, 400, "invalid_request")


@pytest.mark.parametrize("part_header", BROKEN_PART_HEADERS)
async def test_a_page_form_whose_part_header_is_broken_gets_400_not_500(client, part_header):
    event_id = await create_event(client)
    token = await my_csrf_token(client)
    json_answer = {**MULTIPART, "Accept": "application/json"}
    for path in (f"/events/{event_id}/photos", f"/events/{event_id}/votes", "/events", "/me"):
        resp = await client.post(f"{path}?csrf_token={token}", data=multipart_body(part_header),
                                 headers=json_answer)
        await assert_refused(resp, 400, "invalid_request")


async def test_an_undecodable_url_encoded_form_gets_400_not_500(client):
    resp = await client.post("/events", data=b"title=\xff\xfe",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    await assert_refused(resp, 400, "invalid_request")


async def test_a_method_an_api_path_does_not_take_gets_405_with_allow(client):
    resp = await client.delete("/api/events")
    await assert_refused(resp, 405, "method_not_allowed")
    assert resp.headers["Allow"] == "POST"
    resp = await client.request("TRACE", "/api/me")
    assert resp.status == 405 and set(resp.headers["Allow"].split(",")) >= {"GET", "POST"}


@pytest.mark.parametrize("name", ["Ada\u202eevil", "Ada\x00", "Ada\ud800", "x" * 61])
async def test_a_display_name_with_hidden_characters_or_over_60_gets_400(client, name):
    resp = await client.post("/api/me", data=json.dumps({"display_name": name}),
                             headers={"Content-Type": "application/json"})
    await assert_refused(resp, 400, "invalid_request")


async def test_a_display_name_keeps_its_letters_and_collapses_its_spaces(client):
    resp = await client.post("/api/me", json={"display_name": " Ada\t\u00a0Lovelace\x1c \U000f6635"})
    assert resp.status == 200
    assert (await resp.json())["display_name"] == "Ada Lovelace \U000f6635"


async def test_the_openapi_document_names_every_json_route_the_site_serves(client):
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200 and (await resp.json()) == json.loads(json.dumps(DOCUMENT))
    served = {(r.resource.canonical, r.method.lower()) for r in client.server.app.router.routes()
              if r.resource is not None and r.resource.canonical.startswith("/api/")
              and r.method not in ("HEAD", "OPTIONS")}
    documented = {(path, method) for path, operations in DOCUMENT["paths"].items() for method in operations}
    assert served - {("/api/openapi.json", "get")} == documented


def test_the_documented_title_pattern_refuses_exactly_the_titles_the_site_refuses_as_blank():
    """U+001D is whitespace to Python's str.strip(), not to a regex's \\s: the document names
    the blank characters one by one, so it and the site agree on every one of them."""
    import re

    import pytest

    from domain.errors import InvalidTitle
    from web.openapi import TITLE
    from web.titles import BLANKS, clean_title

    for title in [*BLANKS, " \x1d\u3000 ", "\ufeff", "a", " \x1db"]:
        documented = re.search(TITLE["pattern"], title) is not None
        try:
            clean_title(title)
            accepted = True
        except InvalidTitle:
            accepted = False
        assert documented == accepted, repr(title)
    with pytest.raises(InvalidTitle):
        clean_title("\x1d")
