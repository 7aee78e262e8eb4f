"""`python -m eventstore.audit` asking real in-process sites (each over its own SQLite store,
written beforehand) over loopback HTTP: a merged timeline and a verdict."""

import asyncio
import socket
import subprocess
import sys
import uuid

import pytest

from domain.aggregates import PhotoEvent
from domain.messages import AddPhotos, CreateEvent, PhotoMeta
from domain.records import Aborted, Committed, Prepared
from eventstore.audit_settings import read_audit_settings
from eventstore.store import SiteStore
from web.settings import PROJECT_ROOT, load_settings
from web.site import create_app

CREATE = CreateEvent("Picnic", 0, "2026-11-26T10:00:00+00:00")


def write_site(data_dir, site, event_id, records):
    store = SiteStore("sqlite", data_dir / f"site-{site}")
    event = PhotoEvent(event_id=event_id)
    for record in records:
        event.record(record)
    store.save(event)
    store.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def run_cli(*args: str) -> subprocess.CompletedProcess:
    """The CLI in a process of its own, while this loop serves the sites it asks."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "eventstore.audit", *args, cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return subprocess.CompletedProcess(args, process.returncode, out.decode(), err.decode())


@pytest.fixture
def audit(aiohttp_server, tmp_path):
    """audit(event_id, sites, running=all): start those sites over what write_site stored, write
    the settings file they share, and run the CLI with it."""

    async def run(event_id: str, sites: int, running=None) -> subprocess.CompletedProcess:
        ports = [free_port() for _ in range(sites)]
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        path = tmp_path / "settings.toml"
        path.write_text(f"[sites]\ncount = {sites}\nurls = {urls!r}\n".replace("'", '"'))
        for site in range(sites) if running is None else running:
            settings = load_settings(path, data_dir=tmp_path, secret="audit-secret",
                                     cookie_secret="cookie-secret")
            await aiohttp_server(create_app(settings, site), port=ports[site])
        return await run_cli(event_id, "--settings", str(path))

    return run


def photo(n, sha_char):
    return PhotoMeta(f"p{n}", sha_char * 64, "c" * 64, "u1", 0)


async def test_the_audit_of_agreeing_sites_prints_one_timeline_and_exits_0(audit, tmp_path):
    event_id = str(uuid.uuid4())
    upload = AddPhotos(0, (photo(1, "a"),))
    for site in (0, 1):
        write_site(tmp_path, site, event_id, [Prepared("0-t1", 0, CREATE), Committed("0-t1"),
                                               Prepared("1-t2", 1, upload), Committed("1-t2")])
    result = await audit(event_id, 2)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert sum("Committed" in line for line in lines) == 4
    assert any("site 1" in line and "Prepared" in line and "add 1 photo" in line for line in lines)
    assert "verdict: the sites agree" in result.stdout


async def test_the_audit_finds_a_transaction_committed_at_one_site_and_aborted_at_another(audit, tmp_path):
    event_id = str(uuid.uuid4())
    write_site(tmp_path, 0, event_id, [Prepared("0-t1", 0, CREATE), Committed("0-t1")])
    write_site(tmp_path, 1, event_id, [Prepared("0-t1", 0, CREATE), Aborted("0-t1")])
    result = await audit(event_id, 2)
    assert result.returncode == 1
    assert "DISAGREE: transaction 0-t1 has different outcomes" in result.stdout


async def test_the_audit_finds_a_version_with_different_photos_at_two_sites(audit, tmp_path):
    event_id = str(uuid.uuid4())
    for site, sha_char in ((0, "a"), (1, "b")):
        upload = AddPhotos(0, (photo(1, sha_char),))
        write_site(tmp_path, site, event_id, [Prepared("0-t1", 0, CREATE), Committed("0-t1"),
                                               Prepared(f"{site}-t2", site, upload), Committed(f"{site}-t2")])
    result = await audit(event_id, 2)
    assert result.returncode == 1
    assert "version 1 differs between site 0 and site 1" in result.stdout


async def test_the_audit_of_an_event_no_site_knows_exits_1(audit, tmp_path):
    result = await audit(str(uuid.uuid4()), 2)
    assert result.returncode == 1 and "no site has a log" in result.stdout


async def test_a_site_that_does_not_answer_is_named_and_the_audit_exits_1(audit, tmp_path):
    event_id = str(uuid.uuid4())
    for site in (0, 1):
        write_site(tmp_path, site, event_id, [Prepared("0-t1", 0, CREATE), Committed("0-t1")])
    result = await audit(event_id, 3, running=(0, 1))
    assert result.returncode == 1
    assert "site 2 (http://127.0.0.1:" in result.stdout and "did not answer" in result.stdout
    assert "verdict: INCOMPLETE" in result.stdout and "site 2" in result.stdout.splitlines()[-1]


async def test_a_malformed_event_id_is_a_usage_error_that_says_so():
    result = await run_cli("not-an-id", "--settings", str(PROJECT_ROOT / "settings.toml"))
    assert result.returncode == 2
    assert "'not-an-id' is not an event id" in result.stderr


async def test_a_missing_ca_file_is_a_usage_error_that_names_it(tmp_path):
    result = await run_cli(str(uuid.uuid4()), "--ca", str(tmp_path / "no-ca.pem"))
    assert result.returncode == 2 and "no-ca.pem does not exist" in result.stderr


def test_the_audit_reads_the_site_urls_and_ca_of_the_sites_settings_file(tmp_path):
    listed = tmp_path / "listed.toml"
    listed.write_text('[sites]\ncount = 2\nurls = ["https://dc0.example:8443/", "https://dc1.example:8443"]\n'
                      '[tls]\nca = "/etc/photos/ca.pem"\n')
    assert read_audit_settings(listed) == read_audit_settings(listed, site_count=2)
    assert read_audit_settings(listed).urls == ("https://dc0.example:8443", "https://dc1.example:8443")
    assert read_audit_settings(listed).ca == "/etc/photos/ca.pem"
    assert read_audit_settings(listed, ca="/tmp/other.pem").ca == "/tmp/other.pem"
    ports = tmp_path / "ports.toml"
    ports.write_text('[sites]\nhost = "127.0.0.1"\nbase_port = 9100\ncount = 3\n')
    assert read_audit_settings(ports, site_count=2).urls == ("http://127.0.0.1:9100", "http://127.0.0.1:9101")
    assert read_audit_settings(ports).ca is None


def test_a_relative_ca_is_read_beside_the_settings_file_as_the_sites_read_it(tmp_path):
    (tmp_path / "deploy").mkdir()
    relative = tmp_path / "deploy" / "settings.toml"
    relative.write_text('[sites]\ncount = 1\nurls = ["https://dc0.example:8443"]\n[tls]\nca = "ca.crt"\n')
    assert read_audit_settings(relative).ca == str(tmp_path / "deploy" / "ca.crt")


async def test_the_audit_of_stopped_sites_reads_their_stores_under_the_data_dir(tmp_path):
    event_id = str(uuid.uuid4())
    write_site(tmp_path, 0, event_id, [Prepared("0-t1", 0, CREATE), Committed("0-t1")])
    write_site(tmp_path, 1, event_id, [Prepared("0-t1", 0, CREATE), Aborted("0-t1")])
    path = tmp_path / "settings.toml"
    path.write_text('[sites]\ncount = 2\nbase_port = 1\n')  # nothing listens there: not asked
    result = await run_cli(event_id, "--settings", str(path), "--data-dir", str(tmp_path))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "DISAGREE: transaction 0-t1 has different outcomes" in result.stdout
    missing = await run_cli(event_id, "--settings", str(path), "--sites", "3", "--data-dir", str(tmp_path))
    assert missing.returncode == 1 and "site 2" in missing.stdout and "no store" in missing.stdout
