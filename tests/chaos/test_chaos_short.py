"""A short chaos run on every submission: four real sites, a fixed seed, 20+ faults; the checker
must find nothing. A long run is `python -m tests.chaos --sites 4 --seconds 120 --seed S`."""

from __future__ import annotations

import pytest

from tests.chaos.nemesis import WEIGHTS, plan
from tests.chaos.run import RunConfig, run, summary

pytestmark = pytest.mark.chaos

SHORT = RunConfig(seed=100, sites=4, seconds=30.0)


def test_the_same_seed_gives_the_same_schedule_of_faults():
    assert plan(7, 4, 60) == plan(7, 4, 60)
    assert plan(7, 4, 60) != plan(8, 4, 60)


def test_the_short_run_plans_at_least_twenty_faults_of_every_kind():
    faults = plan(SHORT.seed, SHORT.sites, SHORT.seconds, SHORT.fault_interval)
    assert len(faults) >= 20
    assert {f.kind for f in faults} == set(WEIGHTS)


def test_a_short_chaos_run_finds_no_violation(tmp_path):
    result = run(RunConfig(**{**SHORT.__dict__, "out": tmp_path / "run"}))
    report = summary(result)
    print(report)
    assert sum(result.applied.values()) >= 20, report
    assert sum(o.outcome == "ok" for o in result.ops if o.f == "upload") >= 10, report
    assert result.ok, report
