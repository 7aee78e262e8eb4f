"""The deployment tier: four sites on four hosts of the test's own (network namespaces joined
by a bridge), each with its own PostgreSQL server, torn down after the module.

Sites reach each other at their hosts' addresses on one port (as on real machines), over HTTPS
with the secrets, CA and certificates `python -m web.deployment` makes for the hosts, and bind
0.0.0.0. The test process is on the bridge, so it reaches every host; nothing else is routed.
(The chaos run's sites talk plain HTTP: its link proxies stand between them.)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.deploy.hosted import Deployment, hosted_settings, merged, start_postgres
from tests.deploy.hosts import Hosts
from tests.postgres import postgres_bin

SITES = 4
PORT = 8000  # the same port on every host
CHAOS_PORT = 8001  # the chaos run's own sites, beside the deployment's


@pytest.fixture(scope="module")
def hosts() -> Iterator[Hosts]:
    if postgres_bin() is None:
        pytest.fail("PostgreSQL server binaries are not installed: apt-get install postgresql "
                    "(scripts/test.sh does as root)")
    with Hosts(SITES) as made:
        servers = []
        try:
            for k in range(SITES):
                servers.append(start_postgres(made, k))
                for database in (f"photos_site{k}", f"chaos_site{k}"):
                    servers[k].create_database(database)
            yield made
        finally:
            for server in servers:
                server.stop()


@pytest.fixture(scope="module")
def deployment(hosts, tmp_path_factory) -> Iterator[Deployment]:
    # A link may be throttled to 10 Mbit/s: answers take longer than on loopback.
    timings = {"protocol": {"prepare_timeout_s": 3.0, "request_timeout_s": 5.0},
               "event": {"voting_period_s": 8}}
    root = tmp_path_factory.mktemp("deployment")
    settings = merged(timings, hosted_settings(hosts, PORT, "photos_site{site}", tls_dir=root / "tls"))
    with Deployment(root / "sites", hosts, settings) as cluster:
        cluster.start_all()
        yield cluster
