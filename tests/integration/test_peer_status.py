"""Peer status between two real in-process sites on loopback ports: reachable only on an
authenticated answer, otherwise the problem in words; a refused sender warns once per cause."""

import asyncio
import logging
import socket
import time
import uuid

from domain.messages import CreateEvent, Prepare, Unreachable
from web.keys import SERVICE
from web.peers.internal_api import VERIFIER
from web.deployment import cert_pem, issue_site_cert, key_pem, make_ca
from web.settings import TlsSettings, load_settings
from web.site import create_app
from web.tls import server_context

SECRET = "status-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def start_sites(aiohttp_server, tmp_path, secrets=(SECRET, SECRET), running=(0, 1)):
    """Two sites of one deployment (only those in `running` are started): their apps by site."""
    ports = [free_port() for _ in secrets]
    urls = tuple(f"http://127.0.0.1:{p}" for p in ports)
    apps = {}
    for site in running:
        settings = load_settings(None, site_count=len(secrets), urls=urls, data_dir=tmp_path,
                                 secret=secrets[site], cookie_secret="cookie-secret")
        apps[site] = create_app(settings, site)
        await aiohttp_server(apps[site], port=ports[site])
    return apps


async def start_sites_of_two_deployments(aiohttp_server, tmp_path):
    """Two sites over HTTPS, each with a certificate from a CA of its own: neither trusts the
    other's certificate (a peer set up from another deployment's files)."""
    ports = [free_port() for _ in range(2)]
    urls = tuple(f"https://127.0.0.1:{p}" for p in ports)
    apps = {}
    for site in (0, 1):
        folder = tmp_path / f"deployment-{site}"
        folder.mkdir()
        ca_key, ca_cert = make_ca()
        key, cert = issue_site_cert(ca_key, ca_cert, site, "127.0.0.1")
        (folder / "ca.crt").write_bytes(cert_pem(ca_cert))
        (folder / f"site-{site}.crt").write_bytes(cert_pem(cert))
        (folder / f"site-{site}.key").write_bytes(key_pem(key))
        tls = TlsSettings(cert=str(folder / "site-{site}.crt"), key=str(folder / "site-{site}.key"),
                          ca=str(folder / "ca.crt"))
        settings = load_settings(None, site_count=2, urls=urls, data_dir=tmp_path, secret=SECRET,
                                 cookie_secret="cookie-secret", tls=tls)
        apps[site] = create_app(settings, site)
        await aiohttp_server(apps[site], port=ports[site], ssl=server_context(settings, site))
    return apps


async def peers_seen_by(app) -> list[dict]:
    service = app[SERVICE]
    async with service.transport.session.get(service.settings.site_url(service.site) + "/api/status") as resp:
        assert resp.status == 200
        return (await resp.json())["peers"]


async def test_a_peer_that_proves_the_same_secret_is_reachable(aiohttp_server, tmp_path):
    apps = await start_sites(aiohttp_server, tmp_path)
    assert await peers_seen_by(apps[0]) == [{"site": 1, "url": apps[0][SERVICE].settings.site_url(1),
                                             "reachable": True}]


async def test_a_peer_with_another_secret_is_unreachable_because_it_refused_our_signature(
        aiohttp_server, tmp_path):
    apps = await start_sites(aiohttp_server, tmp_path, secrets=(SECRET, "another-secret"))
    for app in apps.values():
        (peer,) = await peers_seen_by(app)
        assert peer["reachable"] is False
        assert "refused our signature" in peer["problem"] and "secrets differ" in peer["problem"]


async def test_a_peer_that_is_not_running_is_down(aiohttp_server, tmp_path):
    apps = await start_sites(aiohttp_server, tmp_path, running=(0,))
    (peer,) = await peers_seen_by(apps[0])
    assert peer["reachable"] is False and peer["problem"].startswith("down")


async def test_a_peer_whose_clock_is_ahead_names_the_skew(aiohttp_server, tmp_path):
    apps = await start_sites(aiohttp_server, tmp_path)
    apps[1][VERIFIER].clock = lambda: time.time() + 100
    (peer,) = await peers_seen_by(apps[0])
    assert peer["reachable"] is False
    assert peer["problem"].startswith("clock skew: its clock is 100.0 s ahead of ours"), peer


async def test_a_peer_whose_certificate_our_ca_did_not_sign_is_a_tls_problem(aiohttp_server, tmp_path):
    apps = await start_sites_of_two_deployments(aiohttp_server, tmp_path)
    (peer,) = await peers_seen_by(apps[0])
    assert peer["reachable"] is False and peer["problem"].startswith("TLS"), peer


async def test_a_sender_whose_signature_is_refused_warns_once_per_cause(aiohttp_server, tmp_path, caplog):
    apps = await start_sites(aiohttp_server, tmp_path, secrets=(SECRET, "another-secret"))
    transport = apps[0][SERVICE].transport
    loop = asyncio.get_running_loop()
    caplog.set_level(logging.INFO, logger="web.peers.transport")
    for i in range(3):  # one after the other: each its own request, each refused
        answer = loop.create_future()
        create = CreateEvent("Picnic", 0, "2026-11-26T10:00:00+00:00")
        message = Prepare(f"0-t{i}", str(uuid.uuid4()), 0, create)
        transport.send(1, message, lambda reply, f=answer: loop.call_soon_threadsafe(f.set_result, reply))
        assert isinstance(await asyncio.wait_for(answer, 10), Unreachable)
    # Site 0's warnings about site 1 (site 1, which dials site 0 at start, warns of its own)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "web.peers.transport"
                and r.getMessage().startswith("site 1 refuses")]
    assert len(warnings) == 1 and "(signature)" in warnings[0].getMessage()


async def test_the_status_page_shows_why_a_peer_is_unreachable(aiohttp_server, tmp_path):
    apps = await start_sites(aiohttp_server, tmp_path, secrets=(SECRET, "another-secret"))
    service = apps[0][SERVICE]
    async with service.transport.session.get(service.settings.site_url(0) + "/status") as resp:
        page = await resp.text()
    assert resp.status == 200
    assert "unreachable" in page and "refused our signature" in page
