"""`python -m eventstore.audit` over real per-site SQLite stores: a merged timeline and a verdict."""

import subprocess
import sys
import uuid

from domain.aggregates import PhotoEvent
from domain.messages import AddPhotos, CreateEvent, PhotoMeta
from domain.records import Aborted, Committed, Prepared
from eventstore.store import SiteStore
from web.settings import PROJECT_ROOT

CREATE = CreateEvent("Picnic", 0, "2026-11-26T10:00:00+00:00")


def write_site(data_dir, site, event_id, records):
    store = SiteStore("sqlite", data_dir / f"site-{site}")
    event = PhotoEvent(event_id=event_id)
    for record in records:
        event.record(record)
    store.save(event)
    store.close()


def audit(data_dir, event_id, sites):
    return subprocess.run(
        [sys.executable, "-m", "eventstore.audit", event_id, "--data-dir", str(data_dir),
         "--sites", str(sites)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60,
    )


def photo(n, sha_char):
    return PhotoMeta(f"p{n}", sha_char * 64, "c" * 64, "u1", 0)


def test_the_audit_of_agreeing_sites_prints_one_timeline_and_exits_0(tmp_path):
    event_id = str(uuid.uuid4())
    upload = AddPhotos(0, (photo(1, "a"),))
    for site in (0, 1):
        write_site(tmp_path, site, event_id, [Prepared("0-t1", 0, CREATE), Committed("0-t1"),
                                               Prepared("1-t2", 1, upload), Committed("1-t2")])
    result = audit(tmp_path, event_id, 2)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert sum("Committed" in line for line in lines) == 4
    assert any("site 1" in line and "Prepared" in line and "add 1 photo" in line for line in lines)
    assert "verdict: the sites agree" in result.stdout


def test_the_audit_finds_a_transaction_committed_at_one_site_and_aborted_at_another(tmp_path):
    event_id = str(uuid.uuid4())
    write_site(tmp_path, 0, event_id, [Prepared("0-t1", 0, CREATE), Committed("0-t1")])
    write_site(tmp_path, 1, event_id, [Prepared("0-t1", 0, CREATE), Aborted("0-t1")])
    result = audit(tmp_path, event_id, 2)
    assert result.returncode == 1
    assert "DISAGREE: transaction 0-t1 has different outcomes" in result.stdout


def test_the_audit_finds_a_version_with_different_photos_at_two_sites(tmp_path):
    event_id = str(uuid.uuid4())
    for site, sha_char in ((0, "a"), (1, "b")):
        upload = AddPhotos(0, (photo(1, sha_char),))
        write_site(tmp_path, site, event_id, [Prepared("0-t1", 0, CREATE), Committed("0-t1"),
                                               Prepared(f"{site}-t2", site, upload), Committed(f"{site}-t2")])
    result = audit(tmp_path, event_id, 2)
    assert result.returncode == 1
    assert "version 1 differs between site 0 and site 1" in result.stdout


def test_the_audit_of_an_event_no_site_knows_exits_1(tmp_path):
    result = audit(tmp_path, str(uuid.uuid4()), 2)
    assert result.returncode == 1 and "no site has a log" in result.stdout
