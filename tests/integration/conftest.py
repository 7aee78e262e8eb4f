"""Fixtures shared by the integration tests that drive one real site in-process."""

import pytest

from web.keys import SERVICE
from web.settings import load_settings
from web.site import create_app

SECRET = "integration-secret"  # the site-to-site key of the site under test


@pytest.fixture
async def client(aiohttp_client, tmp_path):
    """One real site (aiohttp app, real SQLite in tmp_path) behind an aiohttp test client."""
    settings = load_settings(None, site_count=1, data_dir=tmp_path, secret=SECRET,
                             cookie_secret="cookie-secret")
    return await aiohttp_client(create_app(settings, 0))


@pytest.fixture
async def site(client):
    """The `client` fixture's site as its service, for tests that call it without HTTP."""
    return client.server.app[SERVICE]
