"""Fixtures for end-to-end tests: real site processes (tests/e2e/cluster.py) and users."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.cluster import Client, Cluster

_clusters = pytest.StashKey[list[Cluster]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """Attach the tail of every site's log to a failed test's report."""
    report = yield
    if report.failed:
        for cluster in item.stash.get(_clusters, []):
            report.sections.append((f"site logs ({cluster.root.name})", cluster.logs()))
    return report


@pytest.fixture
def cluster_factory(tmp_path, request) -> Iterator[Callable[..., Cluster]]:
    """make(sites=4, settings_overrides=None, start=True) -> a Cluster, stopped at teardown."""
    made: list[Cluster] = []
    request.node.stash[_clusters] = made

    def make(sites: int = 4, settings_overrides: dict | None = None,
             start: bool = True) -> Cluster:
        cluster = Cluster(tmp_path / f"cluster-{len(made)}", sites, settings_overrides)
        made.append(cluster)
        if start:
            cluster.start_all()
        return cluster

    yield make
    for cluster in made:
        cluster.stop_all()


@pytest.fixture
def cluster(cluster_factory) -> Cluster:
    """Four sites with the test settings, started and ready."""
    return cluster_factory()


@pytest.fixture
def client_factory(request) -> Callable[[Cluster | None], Client]:
    """make(cluster=None) -> a new user (own cookie jar) of that cluster, or of `cluster`."""
    def make(of: Cluster | None = None) -> Client:
        return Client((of or request.getfixturevalue("cluster")).url)
    return make
