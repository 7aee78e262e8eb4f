"""A short chaos run on the test's own hosts: the seeded nemesis of tests/chaos (kills, crash
points, pauses, blackholed, delayed, reset or reply-dropping links, partitions) against four
sites on four hosts, each on its own PostgreSQL; the same checker of every invariant."""

from __future__ import annotations

from functools import partial

import pytest

from tests.chaos.run import RunConfig, run, summary
from tests.deploy.conftest import CHAOS_PORT
from tests.deploy.hosted import HostedChaosSites

pytestmark = pytest.mark.deploy


def test_a_short_chaos_run_across_four_hosts_finds_no_violation(hosts, tmp_path):
    config = RunConfig(seed=200, sites=hosts.count, seconds=30.0, out=tmp_path / "run")
    result = run(config, partial(HostedChaosSites, hosts, CHAOS_PORT, "chaos_site{site}"))
    report = summary(result)
    print(report)
    assert sum(result.applied.values()) >= 15, report
    assert sum(o.outcome == "ok" for o in result.ops if o.f == "upload") >= 5, report
    assert result.ok, report
