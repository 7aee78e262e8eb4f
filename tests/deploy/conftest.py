"""The deployment tier: four sites on four hosts of the test's own (network namespaces joined
by a bridge), each with its own PostgreSQL server, torn down after the module.

Sites reach each other at their hosts' addresses on one port (as on real machines), bind
0.0.0.0, and run with secrets made for the run (the shipped example secrets are refused off
loopback). The test process is on the bridge, so it reaches every host; nothing else is routed.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.hosts import Hosts
from tests.e2e.cluster import Client, Cluster
from tests.postgres import PostgresServer, postgres_bin

pytestmark = pytest.mark.deploy

SITES = 4
PORT = 8000  # the same port on every host
PG_PORT = 5432  # each host's own PostgreSQL, on that host's own 127.0.0.1


class Deployment(Cluster):
    """A Cluster whose site k runs inside host k's network namespace."""

    def __init__(self, root: Path, hosts: Hosts, overrides: dict):
        self.hosts = hosts
        super().__init__(root, hosts.count, overrides)

    def wrapper(self, k: int) -> list[str]:
        return self.hosts.ns_command(k)

    def client(self) -> Client:
        """A person whose identity cookie, set by host 0, goes to every host: what the
        deployment's common cookie domain does for browsers (hosts here are bare addresses)."""
        person = Client(self.url)
        person.get_json(0, "/api/me")
        for cookie in list(person.cookies):
            for k in self.sites[1:]:
                shared = copy.copy(cookie)
                shared.domain = self.hosts.address(k)
                person.cookies.set_cookie(shared)
        return person


def deployment_settings(hosts: Hosts) -> dict:
    return {
        "sites": {"urls": [f"http://{hosts.address(k)}:{PORT}" for k in range(hosts.count)],
                  "host": "0.0.0.0",
                  "secret": secrets.token_hex(32), "cookie_secret": secrets.token_hex(32)},
        "storage": {"database": f"postgresql+psycopg://postgres@127.0.0.1:{PG_PORT}/photos_site{{site}}"},
        # A link may be throttled to 10 Mbit/s: answers take longer than on loopback.
        "protocol": {"prepare_timeout_s": 3.0, "request_timeout_s": 5.0},
        "event": {"voting_period_s": 8},
    }


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Iterator[Deployment]:
    if postgres_bin() is None:
        pytest.fail("PostgreSQL server binaries are not installed: apt-get install postgresql "
                    "(scripts/test.sh does as root)")
    root = tmp_path_factory.mktemp("deployment")
    with Hosts(SITES) as hosts:
        servers = []
        try:
            for k in range(SITES):
                # its own temporary folder: the postgres user cannot enter pytest's (0700)
                server = PostgresServer(None, PG_PORT, tuple(hosts.ns_command(k)))
                servers.append(server.start())
                server.create_database(f"photos_site{k}")
            with Deployment(root / "sites", hosts, deployment_settings(hosts)) as cluster:
                cluster.start_all()
                yield cluster
        finally:
            for server in servers:
                server.stop()
