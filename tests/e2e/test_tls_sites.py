"""Real site processes talking over TLS on 127.0.0.1, with what `python -m web.deployment` makes."""

from __future__ import annotations

import shutil
import urllib.error

import pytest

from tests.e2e.cluster import Client, free_base_port
from tests.e2e.helpers import create_event, photo, views
from web.deployment import main as make_deployment
from web.settings import load_settings

pytestmark = pytest.mark.e2e


def deployment(folder, sites: int):
    """A deployment for sites on 127.0.0.1 at free ports; returns its settings."""
    base = free_base_port(sites)
    hosts = ",".join(f"127.0.0.1:{base + k}" for k in range(sites))
    assert make_deployment(["--hosts", hosts, "--out", str(folder)]) == 0
    return load_settings(folder / "settings.toml")


def test_sites_create_and_upload_over_tls_and_a_site_trusting_another_ca_reaches_no_peer(
        tmp_path, cluster_factory):
    ours = deployment(tmp_path / "deploy", 3)
    foreign = deployment(tmp_path / "foreign", 3)
    for k in (0, 1):
        shutil.copy(ours.tls.path("ca", k), tmp_path / f"ca-{k}.crt")
    shutil.copy(foreign.tls.path("ca", 2), tmp_path / "ca-2.crt")  # site 2 trusts another CA
    cluster = cluster_factory(3, {
        "sites": {"host": "127.0.0.1", "urls": list(ours.urls), "secret": ours.secret,
                  "cookie_secret": ours.cookie_secret},
        "tls": {"cert": ours.tls.cert, "key": ours.tls.key, "ca": str(tmp_path / "ca-{site}.crt")},
    })
    assert all(cluster.url(k).startswith("https://127.0.0.1:") for k in cluster.sites)
    alice = Client(cluster.url, ssl_context=cluster.ssl_context)

    event_id = create_event(alice, 0, "Over TLS")
    status, body = alice.upload(1, event_id, [photo(1)])
    assert status == 201, body
    for k, view in views(alice, cluster, event_id).items():
        assert view["title"] == "Over TLS" and view["montage_version"] == 1, (k, view)

    # Site 2 serves a certificate its peers trust, but trusts none of theirs.
    status, body = alice.post_json(2, "/api/events", {"title": "Unverified"})
    assert status == 503 and body["error"] == "site_unreachable", body
    _, status_0 = alice.get_json(0, "/api/status")
    assert all(peer["reachable"] for peer in status_0["peers"]), status_0
    _, status_2 = alice.get_json(2, "/api/status")
    assert not any(peer["reachable"] for peer in status_2["peers"]), status_2

    plain = Client(lambda k: cluster.url(k).replace("https://", "http://"))
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        plain.get_json(0, "/api/status")
