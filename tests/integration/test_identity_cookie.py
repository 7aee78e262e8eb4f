"""The identity cookie (web.identity): a signed one names its user on every request, one that
does not verify gets a fresh identity, and remembering recent verdicts changes neither."""

from __future__ import annotations

import pytest

from web.identity import COOKIE_NAME, cookie_value
from web.settings import load_settings
from web.site import create_app

COOKIE_SECRET = "c" * 32


@pytest.fixture
async def site(aiohttp_client, tmp_path):
    settings = load_settings(None, site_count=2, data_dir=tmp_path, secret="s" * 32,
                             cookie_secret=COOKIE_SECRET)
    return await aiohttp_client(create_app(settings, 0))


async def me(site, cookie: str | None) -> tuple[str, str | None]:
    """The user the site took the request for, and the identity cookie it set (None: none)."""
    site.session.cookie_jar.clear()
    headers = {"Cookie": f"{COOKIE_NAME}={cookie}"} if cookie is not None else {}
    response = await site.get("/api/me", headers=headers)
    assert response.status == 200
    fresh = response.cookies.get(COOKIE_NAME)
    return (await response.json())["user_id"], fresh.value if fresh is not None else None


async def test_a_signed_cookie_names_its_user_every_time_and_gets_no_new_one(site):
    user = "a" * 32
    cookie = cookie_value(COOKIE_SECRET, user)
    for _ in range(3):  # the first verdict is computed, the others remembered
        assert await me(site, cookie) == (user, None)


async def test_a_cookie_that_does_not_verify_gets_a_fresh_identity_even_beside_a_remembered_one(site):
    user = "b" * 32
    cookie = cookie_value(COOKIE_SECRET, user)
    assert await me(site, cookie) == (user, None)
    tampered = cookie[:-1] + ("A" if cookie[-1] != "A" else "B")
    other_secret = cookie_value("x" * 32, user)
    for bad in (tampered, tampered, other_secret, "", "not-a-cookie"):
        got, fresh = await me(site, bad)
        assert got != user and fresh is not None and got == fresh.split(".")[0]
    assert await me(site, cookie) == (user, None)


async def test_no_cookie_gets_a_fresh_identity_each_time(site):
    first, second = await me(site, None), await me(site, None)
    assert first[1] is not None and second[1] is not None and first[0] != second[0]


async def test_past_the_headers_remembered_the_oldest_are_verified_again_not_trusted_blindly(
        aiohttp_client, tmp_path, monkeypatch):
    import web.identity

    monkeypatch.setattr(web.identity, "VERIFIED_COOKIES", 3)
    settings = load_settings(None, site_count=2, data_dir=tmp_path, secret="s" * 32,
                             cookie_secret=COOKIE_SECRET)
    site = await aiohttp_client(create_app(settings, 0))
    users = [f"{n}" * 32 for n in range(1, 8)]
    for _ in range(2):  # the second pass finds the first headers forgotten, and verifies them
        for user in users:
            assert await me(site, cookie_value(COOKIE_SECRET, user)) == (user, None)
    tampered = cookie_value(COOKIE_SECRET, users[0])[:-2] + "xx"
    assert (await me(site, tampered))[0] != users[0]
