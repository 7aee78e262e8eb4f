"""A site with [tls] serves HTTPS; peers that check against the deployment's CA talk to it, and
a certificate from another CA, or for another host, is refused."""

from __future__ import annotations

import uuid

import aiohttp
import pytest

from tests.integration.test_site_api import prepare_body
from web.deployment import cert_pem, issue_site_cert, key_pem, make_ca
from web.peers.auth import signed_headers
from web.peers.transport import BATCH_PATH
from web.settings import TlsSettings, load_settings
from web.site import create_app
from web.tls import client_context, server_context

SECRET = "tls-integration-secret"


def write_deployment(folder, host: str) -> TlsSettings:
    """A CA and site 0's key and certificate for `host`, as `python -m web.deployment` makes them."""
    folder.mkdir()
    ca_key, ca_cert = make_ca()
    key, cert = issue_site_cert(ca_key, ca_cert, 0, host)
    (folder / "ca.crt").write_bytes(cert_pem(ca_cert))
    (folder / "site-0.crt").write_bytes(cert_pem(cert))
    (folder / "site-0.key").write_bytes(key_pem(key))
    return TlsSettings(cert=str(folder / "site-{site}.crt"), key=str(folder / "site-{site}.key"),
                       ca=str(folder / "ca.crt"))


def tls_settings(tmp_path, tls: TlsSettings):
    return load_settings(None, site_count=1, data_dir=tmp_path / "data", secret=SECRET,
                         cookie_secret="cookie-secret", tls=tls)


@pytest.fixture
async def https_site(aiohttp_server, tmp_path):
    """Site 0 serving HTTPS with a certificate for 127.0.0.1, and its settings."""
    settings = tls_settings(tmp_path, write_deployment(tmp_path / "ours", "127.0.0.1"))
    server = await aiohttp_server(create_app(settings, 0), ssl=server_context(settings, 0))
    return server, settings


async def post_signed_prepare(session: aiohttp.ClientSession, url) -> aiohttp.ClientResponse:
    body = prepare_body(str(uuid.uuid4()))
    headers = {"Content-Type": "application/octet-stream",
               **signed_headers(SECRET, 0, "POST", BATCH_PATH, body)}
    return await session.post(url, data=body, headers=headers)


async def test_a_peer_checking_against_the_ca_talks_to_the_site_over_https(https_site):
    server, settings = https_site
    assert server.scheme == "https"
    connector = aiohttp.TCPConnector(ssl=client_context(settings, 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        response = await post_signed_prepare(session, server.make_url(BATCH_PATH))
        assert response.status == 200
        assert (await response.json())["replies"][0]["yes"] is True


async def test_a_peer_trusting_another_ca_refuses_the_site(https_site, tmp_path):
    server, _ = https_site
    stranger = tls_settings(tmp_path, write_deployment(tmp_path / "theirs", "127.0.0.1"))
    connector = aiohttp.TCPConnector(ssl=client_context(stranger, 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await post_signed_prepare(session, server.make_url(BATCH_PATH))


async def test_a_certificate_for_another_host_is_refused(aiohttp_server, tmp_path):
    settings = tls_settings(tmp_path, write_deployment(tmp_path / "ours", "localhost"))
    server = await aiohttp_server(create_app(settings, 0), ssl=server_context(settings, 0))
    connector = aiohttp.TCPConnector(ssl=client_context(settings, 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        with pytest.raises(aiohttp.ClientConnectorCertificateError, match="127.0.0.1"):
            await session.get(server.make_url("/api/status"))  # dialled at 127.0.0.1


async def test_plain_http_to_the_https_site_gets_no_answer(https_site):
    server, _ = https_site
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            await session.get(f"http://127.0.0.1:{server.port}/api/status")
