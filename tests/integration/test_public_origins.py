"""Behind a reverse proxy: posts from the public origin are accepted, links name it, and the
cookies carry the shared domain and Secure when people reach the site over HTTPS."""

from __future__ import annotations

from http.cookies import SimpleCookie

import pytest

from web.settings import load_settings
from web.site import create_app

PUBLIC = ("https://photos.example", "https://b.photos.example")


@pytest.fixture
async def proxied(aiohttp_client, tmp_path):
    """Site 0 of two, reached by peers at 127.0.0.1 and by people at https://photos.example."""
    settings = load_settings(None, site_count=2, data_dir=tmp_path, secret="s" * 32,
                             cookie_secret="c" * 32, public_urls=PUBLIC,
                             cookie_domain=".photos.example")
    return await aiohttp_client(create_app(settings, 0))


def set_cookies(response) -> SimpleCookie:
    jar = SimpleCookie()
    for header in response.headers.getall("Set-Cookie"):
        jar.load(header)
    return jar


@pytest.mark.parametrize("origin", [
    "https://photos.example", "https://photos.example:443", "https://B.photos.example",
    "http://127.0.0.1:8000",  # as peers reach site 0 (sites.urls)
])
async def test_a_post_from_a_public_or_site_origin_is_accepted(proxied, origin):
    response = await proxied.post("/api/me", json={"display_name": "Ada"},
                                  headers={"Origin": origin})
    assert response.status == 200, await response.text()


@pytest.mark.parametrize("origin", [
    "https://evil.example", "http://photos.example", "https://photos.example:8443", "null",
])
async def test_a_post_from_any_other_origin_is_refused(proxied, origin):
    response = await proxied.post("/api/me", json={"display_name": "Ada"},
                                  headers={"Origin": origin})
    assert response.status == 403
    assert (await response.json())["error"] == "forbidden_origin"


async def test_the_cookies_carry_the_shared_domain_and_secure_over_public_https(proxied):
    response = await proxied.post("/api/me", json={"display_name": "Ada"},
                                  headers={"Origin": PUBLIC[0]})
    cookies = set_cookies(response)
    assert {"photo_session_user", "photo_session_name"} <= cookies.keys()
    for cookie in cookies.values():
        assert cookie["domain"] == ".photos.example"
        assert cookie["secure"] is True
        assert cookie["httponly"] is True


async def test_over_plain_http_the_cookie_is_neither_secure_nor_given_a_domain(client):
    response = await client.get("/api/me")
    cookie = set_cookies(response)["photo_session_user"]
    assert not cookie["secure"] and not cookie["domain"]


async def test_links_shown_to_people_name_the_public_origin(aiohttp_client, tmp_path):
    settings = load_settings(None, site_count=1, data_dir=tmp_path, public_urls=PUBLIC[:1])
    client = await aiohttp_client(create_app(settings, 0))
    response = await client.post("/api/events", json={"title": "Picnic"},
                                 headers={"Origin": PUBLIC[0]})
    assert response.status == 201, await response.text()
    event_id = (await response.json())["event_id"]
    page = await (await client.get(f"/events/{event_id}")).text()
    assert f"https://photos.example/events/{event_id}" in page
    assert "127.0.0.1" not in page
