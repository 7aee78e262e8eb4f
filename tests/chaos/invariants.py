"""The invariants of DESIGN.md over what the sites stored and serve, each a function of one
event's evidence returning violations (history_checks.py holds those about clients' operations).

Evidence per event: every site's replayed log (replay.SiteLog), every site's final view through
the API, the history's operations on the event, and what healing observed.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from domain import agreement
from domain.messages import ACCEPT, REJECT, AddPhotos, Publish, StartRound
from domain.records import Committed
from tests.chaos.history import Op
from tests.chaos.replay import SiteLog, collections, rounds_started

# Service bugs the harness found and test_found_bugs.py reproduces (xfail, strict): a violation
# of this shape is still printed, as known, but does not fail a run. Remove an entry with the fix.
# Service bugs a run may hit that are known and not yet fixed: name -> what goes wrong.
# (Both bugs the first runs found, a definite 503 for a change that happened, are fixed;
# tests/chaos/test_found_bugs.py keeps them as regression tests.)
KNOWN_BUGS: dict[str, str] = {}


@dataclass(frozen=True)
class Violation:
    invariant: str
    event: str | None
    sites: tuple[int, ...]
    message: str
    ops: tuple[str, ...] = ()
    known: str = ""  # a key of KNOWN_BUGS when this is one of them

    def __str__(self) -> str:
        where = f"event {self.event}" if self.event else "run"
        sites = f" sites {list(self.sites)}" if self.sites else ""
        known = f" (known bug {self.known})" if self.known else ""
        lines = [f"[{self.invariant}]{known} {where}{sites}: {self.message}"]
        lines += [f"    {op}" for op in self.ops]
        return "\n".join(lines)


@dataclass
class EventEvidence:
    event_id: str
    logs: dict[int, SiteLog]
    views: dict[int, dict]  # site -> final GET /api/events/{id} (or {"status": ...})
    digests: dict[int, str]  # site -> sha256 of the published montage served there
    ops: list[Op]  # the history's operations on this event
    final_wall: float  # when the final views were read (epoch)
    round_bound_s: float
    site_dirs: dict[int, Path] = field(default_factory=dict)  # site -> its data folder, if read


def agreement_holds(ev: EventEvidence) -> list[Violation]:
    out = []
    for site, log in ev.logs.items():
        if log.error:
            out.append(Violation("finality", ev.event_id, (site,), f"the log does not replay: {log.error}"))
    records = {s: log.participant + log.coordinator for s, log in ev.logs.items() if not log.error}
    verdict = agreement.check(ev.event_id, records)
    out += [Violation("agreement", ev.event_id, tuple(ev.logs), p) for p in verdict.problems]
    exists = {s for s, log in ev.logs.items() if log.final.exists}
    if exists and exists != set(ev.logs):
        out.append(Violation("agreement", ev.event_id, tuple(sorted(set(ev.logs) - exists)),
                             f"the event exists at sites {sorted(exists)} but not at the others"))
    for rnd, txns in sorted(rounds_started(ev.logs).items()):
        if len(txns) > 1:
            out.append(Violation("agreement", ev.event_id, tuple(ev.logs),
                                 f"round {rnd} was started by {len(txns)} transactions: {sorted(txns)}"))
    digests = set(ev.digests.values())
    if len(digests) > 1:
        out.append(Violation("same_history", ev.event_id, tuple(ev.digests),
                             f"the published montage differs between sites: {ev.digests}"))
    return out


def _ballots(ev: EventEvidence) -> dict[int, list[tuple[int, object]]]:
    found: dict[int, list] = {}
    for site, log in ev.logs.items():
        for rnd, ballot in log.ballots():
            found.setdefault(rnd, []).append((site, ballot))
    return found


def _submitters_at(ev: EventEvidence, version: int) -> set[str]:
    longest = max((log.final.photos for log in ev.logs.values()), key=len, default=())
    return {p.submitter for p in longest[:version]}


def rounds_are_valid(ev: EventEvidence) -> list[Violation]:
    """A published round: started with the same terms, accepted in time by exactly its
    submitters, no reject. An aborted one: for the reason its ballots give."""
    out, starts, ballots = [], rounds_started(ev.logs), _ballots(ev)
    for txn, (p, decided) in sorted(collections(ev.logs).items()):
        cast = ballots.get(p.round, [])
        in_time = [(s, b) for s, b in cast if b.at <= p.deadline]
        rejects = [(s, b) for s, b in in_time if b.decision == REJECT]
        accepted = {b.user for _, b in in_time if b.decision == ACCEPT}
        committed_at = [s for s, log in ev.logs.items() if txn in dict(log.committed(Publish))]
        if committed_at or (decided is not None and decided.commit):
            sites = tuple(committed_at)
            start = list(starts.get(p.round, {}).values())
            if not start:
                out.append(Violation("validity", ev.event_id, sites, f"round {p.round} published but never started"))
            elif (start[0].version, start[0].deadline, tuple(start[0].submitters)) != (
                    p.version, p.deadline, tuple(p.submitters)):
                out.append(Violation("validity", ev.event_id, sites,
                                     f"round {p.round} published on other terms than it started: {start[0]} / {p}"))
            expected = _submitters_at(ev, p.version)
            if set(p.submitters) != expected:
                out.append(Violation("validity", ev.event_id, sites,
                                     f"round {p.round} counted submitters {sorted(p.submitters)}, "
                                     f"version {p.version} has {sorted(expected)}"))
            if missing := set(p.submitters) - accepted:
                out.append(Violation("validity", ev.event_id, sites,
                                     f"round {p.round} published without an accept by the deadline from {sorted(missing)}"))
            if rejects:
                out.append(Violation("validity", ev.event_id, tuple(s for s, _ in rejects),
                                     f"round {p.round} published despite rejects {[b for _, b in rejects]}"))
        elif decided is not None and decided.reason == "rejected" and not rejects:
            out.append(Violation("validity", ev.event_id, tuple(ev.logs),
                                 f"round {p.round} aborted as rejected, but no reject was cast in time"))
        elif (decided is not None and decided.reason == "timeout" and not rejects
              and set(p.submitters) <= accepted):
            out.append(Violation("validity", ev.event_id, tuple(ev.logs),
                                 f"round {p.round} aborted as timed out, but every submitter's accept "
                                 f"was stored in time: {sorted(accepted)}"))
    for rnd, cast in ballots.items():
        start = list(starts.get(rnd, {}).values())
        for site, b in cast:
            if start and b.user not in start[0].submitters:
                out.append(Violation("validity", ev.event_id, (site,),
                                     f"round {rnd}: a vote by non-submitter {b.user} was stored"))
            if start and b.at > start[0].deadline:
                out.append(Violation("validity", ev.event_id, (site,),
                                     f"round {rnd}: a vote was stored after the deadline: {b}"))
    return out


def frozen_while_voting(ev: EventEvidence) -> list[Violation]:
    """At every site: nothing commits into a running round or a published event, and a round
    publishes the version it froze."""
    out = []
    for site, log in ev.logs.items():
        for step in log.steps:
            if not isinstance(step.record, Committed):
                continue
            state, p, txn = step.before, step.payload, step.record.txn_id
            if isinstance(p, (AddPhotos, StartRound)) and state.published:
                out.append(Violation("finality", ev.event_id, (site,),
                                     f"{type(p).__name__} {txn} committed after publication of v{state.published_version}"))
            elif isinstance(p, AddPhotos) and state.round is not None:
                out.append(Violation("freeze", ev.event_id, (site,),
                                     f"photos {txn} committed while round {state.round.round} ran"))
            elif isinstance(p, StartRound) and state.round is not None:
                out.append(Violation("freeze", ev.event_id, (site,),
                                     f"round {p.round} started while round {state.round.round} ran"))
            elif isinstance(p, Publish) and (state.version != p.version or state.published):
                out.append(Violation("freeze", ev.event_id, (site,),
                                     f"round {p.round} published v{p.version} at version {state.version}"
                                     f" (already published: {state.published_version})"))
        seen = Counter((rnd, b.user) for rnd, b in log.ballots())
        for (rnd, user), n in seen.items():
            if n > 1:
                out.append(Violation("finality", ev.event_id, (site,),
                                     f"user {user} has {n} votes stored in round {rnd}"))
    return out


def replay_matches_service(ev: EventEvidence) -> list[Violation]:
    """What a site serves is what its log replays to."""
    out = []
    for site, view in ev.views.items():
        log = ev.logs.get(site)
        if log is None or log.error or "state" not in view:
            continue
        s = log.final
        outcome = s.last_outcome and {"round": s.last_outcome.round, "outcome": s.last_outcome.outcome,
                                      "reason": s.last_outcome.reason}
        replayed = {"state": s.phase, "montage_version": s.version,
                    "published_version": s.published_version, "last_outcome": outcome}
        served = {k: view.get(k) for k in replayed}
        if served != replayed:
            out.append(Violation("finality", ev.event_id, (site,),
                                 f"the site serves {served} but its log replays to {replayed}"))
    return out


def photos_on_disk(ev: EventEvidence) -> list[Violation]:
    """Every photo a site committed is a file there (and its thumbnail), with that sha256."""
    out = []
    for site, folder in ev.site_dirs.items():
        log = ev.logs.get(site)
        for photo in log.final.photos if log else ():
            for kind, sha in (("photos", photo.sha256), ("thumbs", photo.thumb_sha256)):
                path = folder / kind / f"{sha}.jpg"
                if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != sha:
                    out.append(Violation("acknowledged", ev.event_id, (site,),
                                         f"committed photo {photo.photo_id}: {kind}/{sha[:12]}… is "
                                         f"{'corrupt' if path.is_file() else 'missing'} on disk"))
    return out


def settled(ev: EventEvidence) -> list[Violation]:
    """After healing: nothing prepared is left undecided, every decision reached every site,
    and no round runs past its deadline plus the bound."""
    out = []
    for site, log in ev.logs.items():
        if log.final.prepared is not None:
            out.append(Violation("liveness", ev.event_id, (site,),
                                 f"still in doubt about {log.final.prepared.txn_id} after healing"))
        r = log.final.round
        if r is not None and r.deadline + ev.round_bound_s < ev.final_wall:
            out.append(Violation("liveness", ev.event_id, (site,),
                                 f"round {r.round} still open {ev.final_wall - r.deadline:.1f} s after "
                                 f"its deadline"))
        acks = log.acknowledged()
        for txn, began in log.began().items():
            if txn in log.decided() and set(began.sites) - acks.get(txn, set()):
                out.append(Violation("liveness", ev.event_id, tuple(sorted(set(began.sites) - acks.get(txn, set()))),
                                     f"the decision on {txn} was never acknowledged (coordinator: site {site})"))
            elif txn not in log.decided():
                out.append(Violation("liveness", ev.event_id, (site,), f"{txn} was never decided"))
    for site, view in ev.views.items():
        if "state" not in view:
            out.append(Violation("liveness", ev.event_id, (site,), f"the site does not serve the event: {view}"))
    return out


BY_LOGS = (agreement_holds, rounds_are_valid, frozen_while_voting, replay_matches_service,
           photos_on_disk, settled)
