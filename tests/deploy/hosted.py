"""Sites on the test's own hosts (tests/deploy/hosts.py): one per network namespace, each with its
own PostgreSQL server, reached at its host's address; and people who are one person everywhere.
"""

from __future__ import annotations

import copy
import secrets
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.chaos.proxy import Proxies
from tests.chaos.sites import ChaosSites
from tests.deploy.hosts import Hosts
from tests.e2e.cluster import PROJECT_ROOT, Client, Cluster
from tests.postgres import PostgresServer

PG_PORT = 5432  # each host's own PostgreSQL


class SharedIdentityClient(Client):
    """A person whose identity cookie goes to every host, as a deployment's common cookie
    domain makes browsers do (the hosts here are bare addresses, which cookies cannot span)."""

    def __init__(self, base_url, hosts: Hosts, sites, timeout: float = 30, ssl_context=None):
        super().__init__(base_url, timeout, ssl_context)
        self.addresses = [hosts.address(k) for k in sites]

    def request(self, site, method, path, body=None, headers=None):
        response = super().request(site, method, path, body, headers)
        for cookie in list(self.cookies):
            if cookie.domain == self.addresses[site]:
                for address in self.addresses:
                    if address != cookie.domain:
                        shared = copy.copy(cookie)
                        shared.domain = address
                        self.cookies.set_cookie(shared)
        return response


def start_postgres(hosts: Hosts, k: int) -> PostgresServer:
    """Host k's PostgreSQL: on its own 127.0.0.1 and its address, open to the hosts' network
    (its site names it by its address; the test reads the logs from the bridge)."""
    # Its own temporary folder: the postgres user cannot enter pytest's (0700).
    server = PostgresServer(None, PG_PORT, tuple(hosts.ns_command(k)),
                            listen=f"127.0.0.1,{hosts.address(k)}", trusted=f"{hosts.prefix}.0/24")
    return server.start()


def hosted_settings(hosts: Hosts, port: int, database: str, tls_dir: Path | None = None) -> dict:
    """Site k at host k's address on `port`, binding every address of its host; its store the
    database `database` (with "{site}") on its host's PostgreSQL. With `tls_dir`, what
    `python -m web.deployment` makes there for these hosts (secrets, CA, certificates: HTTPS
    between sites); otherwise plain HTTP and secrets made here."""
    store = {"database": f"postgresql+psycopg://postgres@{hosts.address_template()}:{PG_PORT}/{database}"}
    addresses = [hosts.address(k) for k in range(hosts.count)]
    if tls_dir is None:
        return {"sites": {"urls": [f"http://{a}:{port}" for a in addresses], "host": "0.0.0.0",
                          "secret": secrets.token_hex(32), "cookie_secret": secrets.token_hex(32)},
                "storage": store}
    subprocess.run([sys.executable, "-m", "web.deployment", "--hosts", ",".join(addresses),
                    "--port", str(port), "--out", str(tls_dir)], check=True, cwd=PROJECT_ROOT,
                   capture_output=True, text=True)
    made = tomllib.loads((tls_dir / "settings.toml").read_text())
    tls = {key: str(tls_dir / path) for key, path in made["tls"].items()}
    return {"sites": made["sites"], "tls": tls, "storage": store}


def merged(*documents: Mapping[str, Mapping[str, Any]]) -> dict:
    out: dict = {}
    for document in documents:
        for table, values in document.items():
            out.setdefault(table, {}).update(values)
    return out


class OnHosts:
    """Site k runs inside host k's network namespace; people are one person on every host."""

    hosts: Hosts

    def wrapper(self, k: int) -> list[str]:
        return self.hosts.ns_command(k)

    def client(self, timeout: float = 30) -> Client:
        return SharedIdentityClient(self.url, self.hosts, self.sites, timeout, self.ssl_context)


class Deployment(OnHosts, Cluster):
    def __init__(self, root: Path, hosts: Hosts, overrides: Mapping):
        self.hosts = hosts
        super().__init__(root, hosts.count, overrides)


class HostedChaosSites(OnHosts, ChaosSites):
    """A chaos run's sites on the hosts; their links to each other go through the proxies, which
    listen on this machine's address on the hosts' bridge."""

    def __init__(self, hosts: Hosts, port: int, database: str, root: Path, sites: int,
                 overrides: Mapping | None = None):
        self.hosts = hosts
        super().__init__(root, sites, merged(overrides or {}, hosted_settings(hosts, port, database)))

    def make_proxies(self) -> Proxies:
        return Proxies({k: self.settings.site_port(k) for k in self.sites},
                       {k: self.hosts.address(k) for k in self.sites}, listen=self.hosts.gateway)
