"""Invariants that tie the clients' history to what the sites stored: what a client was told
(ok: it happened; fail: it did not) must be what the logs say, and what a client read must be
what a site had stored.
"""

from __future__ import annotations

from domain.messages import ACCEPT, REJECT, StartRound
from tests.chaos.history import FAIL, OK, Op
from tests.chaos.invariants import EventEvidence, Violation
from tests.chaos.replay import collections

# The site stamps a vote between the request's sending and its answer's arrival (one host, one
# clock); the same user's previous vote, even a moment before, falls outside.
CLOCK_SLACK_S = 0.001
# How late a home site may start a round for an accept whose voter already had an answer (a
# request stuck behind a paused site or a slow link): refusals up to this long before count.
ROUND_START_SLACK_S = 15.0


def votes_match_history(ev: EventEvidence) -> list[Violation]:
    """A 200 vote is stored, as cast, at one site (the person's ballot site, wherever it was
    cast); a refused one is stored nowhere; a recorded reject means its round did not publish;
    nobody has two ballots in a round."""
    out = []
    published = {p.round for p, decided in collections(ev.logs).values() if decided and decided.commit}
    everywhere = [(site, r, b) for site, log in ev.logs.items() for r, b in log.ballots()]
    for op in (o for o in ev.ops if o.f == "vote" and o.outcome in (OK, FAIL)):
        user, decision = op.value["user"], op.value["decision"]
        stored = [(r, b) for _, r, b in everywhere if b.user == user
                  and op.invoked_wall - CLOCK_SLACK_S <= b.at <= op.completed_wall + CLOCK_SLACK_S]
        if op.outcome == OK:
            rnd = op.result.get("round")
            if not any(r == rnd and b.decision == decision for r, b in stored):
                out.append(Violation("finality", ev.event_id, (op.site,),
                                     f"a recorded {decision} in round {rnd} is in no site's log",
                                     (op.describe(),)))
            if decision == REJECT and rnd in published:
                out.append(Violation("validity", ev.event_id, (op.site,),
                                     f"round {rnd} published although a reject was recorded",
                                     (op.describe(),)))
        elif stored:
            out.append(Violation("validity", ev.event_id, (op.site,),
                                 f"a refused vote was stored: {stored}", (op.describe(),)))
    ballots: dict[tuple[int, str], set] = {}
    for site, r, b in everywhere:
        ballots.setdefault((r, b.user), set()).add((b.decision, b.at, b.site))
    for (r, user), kept in sorted(ballots.items()):
        if len(kept) > 1:
            out.append(Violation("finality", ev.event_id, tuple(sorted({s for _, _, s in kept})),
                                 f"round {r}: {user} holds {len(kept)} ballots: {sorted(kept)}"))
    return out


def refused_accepts_started_nothing(ev: EventEvidence) -> list[Violation]:
    """A round starts only for an accept that was not refused: when every accept that was in
    flight as the home site began a StartRound got a definite refusal (a 409, a 503 which
    promises nothing was done), the refusal was not true."""
    out = []
    for site, log in ev.logs.items():
        decided = log.decided()
        for txn, began in log.began().items():
            if not isinstance(began.payload, StartRound) or not getattr(decided.get(txn), "commit", False):
                continue
            at = log.began_at[txn]
            in_flight = [o for o in ev.ops if o.f == "vote" and o.value["decision"] == ACCEPT
                         and o.invoked_wall <= at <= (o.completed_wall or float("inf")) + ROUND_START_SLACK_S]
            if in_flight and all(o.outcome == FAIL for o in in_flight):
                t = in_flight[0].invoked + at - in_flight[0].invoked_wall  # on the history's clock
                out.append(Violation("definite", ev.event_id, (site,),
                                     f"round {began.payload.round} ({txn}, begun at {t:.2f}s) started "
                                     f"although every accept in flight was refused",
                                     tuple(o.describe() for o in in_flight)))
    return out


def acknowledged_kept(ev: EventEvidence) -> list[Violation]:
    """A 201 create exists everywhere; a 201 upload's photos are at their versions everywhere;
    a refused upload's photos are nowhere."""
    out = []
    for op in (o for o in ev.ops if o.f in ("create", "upload") and o.outcome in (OK, FAIL)):
        if op.f == "create":
            missing = [s for s, log in ev.logs.items() if not log.final.exists]
            if op.outcome == OK and missing:
                out.append(Violation("acknowledged", ev.event_id, tuple(missing),
                                     "a created (201) event is missing", (op.describe(),)))
            elif op.outcome == FAIL and len(missing) < len(ev.logs):
                out.append(Violation("definite", ev.event_id, (),
                                     "a refused create made the event (found by its title)",
                                     (op.describe(),)))
            continue
        if op.outcome == OK:
            for photo in op.result.get("photos", []):
                lost = [s for s, log in ev.logs.items()
                        if len(log.final.photos) < photo["version"]
                        or log.final.photos[photo["version"] - 1].photo_id != photo["photo_id"]
                        or log.final.photos[photo["version"] - 1].sha256 != photo["sha256"]]
                if lost:
                    out.append(Violation("acknowledged", ev.event_id, tuple(lost),
                                         f"acknowledged photo {photo['photo_id']} (v{photo['version']}) is "
                                         f"not there", (op.describe(),)))
        else:
            shas = set(op.value.get("shas", []))
            found = [s for s, log in ev.logs.items() if shas & {p.sha256 for p in log.final.photos}]
            if found:
                out.append(Violation("definite", ev.event_id, tuple(found),
                                     "the photos of a refused upload were committed", (op.describe(),)))
    return out


def reads_are_monotonic(ev: EventEvidence) -> list[Violation]:
    """At one site, a read that starts after another ended never sees less: no lower version,
    no shorter photo list, no earlier outcome, no unpublishing."""
    out = []
    reads = [o for o in ev.ops if o.f == "read" and o.outcome == OK and "state" in o.result]
    for site in {o.site for o in reads}:
        here = [o for o in reads if o.site == site]
        by_end = sorted(here, key=lambda o: o.completed)
        best: dict[str, Op] = {}
        i = 0
        for b in sorted(here, key=lambda o: o.invoked):
            while i < len(by_end) and by_end[i].completed < b.invoked:
                a = by_end[i]
                for key, value in _progress(a).items():
                    if key not in best or value > _progress(best[key]).get(key, ()):
                        best[key] = a
                i += 1
            mine = _progress(b)
            for key, a in best.items():
                theirs = _progress(a)
                if key not in mine or key not in theirs:
                    continue
                if mine[key] < theirs[key] or (key == "photos" and not _prefix(a, b)):
                    out.append(Violation("finality", ev.event_id, (site,),
                                         f"a later read at the same site went back ({key})",
                                         (a.describe(), b.describe())))
                    break
    published = {o.result["published_version"] for o in reads if o.result["published_version"]}
    for site, view in ev.views.items():
        if published and "state" in view and view.get("published_version") not in published:
            out.append(Violation("finality", ev.event_id, (site,),
                                 f"a read saw v{sorted(published)} published; the site ends with "
                                 f"{view.get('published_version')}"))
    return out


def reads_come_from_the_log(ev: EventEvidence) -> list[Violation]:
    """What a site served was, at that moment, durable there: every read equals the replay of
    some prefix of that site's log (a state that was never stored would be lost in a crash)."""
    out = []
    stored = {site: {_served(s) for s in [*(step.before for step in log.steps), log.final]}
              for site, log in ev.logs.items() if not log.error}
    for op in ev.ops:
        if op.f == "read" and op.outcome == OK and "state" in op.result and op.site in stored:
            r = op.result
            outcome = r["last_outcome"]
            seen = (r["state"], r["montage_version"], r["published_version"],
                    outcome and (outcome["round"], outcome["outcome"], outcome["reason"]),
                    r.get("vote") and (r["vote"]["round"], r["vote"]["montage_version"]))
            if seen not in stored[op.site]:
                out.append(Violation("finality", ev.event_id, (op.site,),
                                     f"a read saw {seen}, a state the site's log never held",
                                     (op.describe(),)))
    return out


def _served(s) -> tuple:
    outcome = s.last_outcome and (s.last_outcome.round, s.last_outcome.outcome, s.last_outcome.reason)
    return (s.phase, s.version, s.published_version, outcome, s.round and (s.round.round, s.round.version))


def _progress(op: Op) -> dict[str, tuple]:
    r = op.result
    outcome = r["last_outcome"]["round"] if r["last_outcome"] else 0
    progress = {"version": (r["montage_version"],), "published": (r["published_version"] is not None,),
                "outcome": (outcome,)}
    if r["is_submitter"] or r["published_version"] is not None:  # only then are photos shown
        progress["photos"] = (len(r["photos"]),)
    return progress


def _prefix(a: Op, b: Op) -> bool:
    pa, pb = a.result["photos"], b.result["photos"]
    return pb[:len(pa)] == pa


BY_HISTORY = (votes_match_history, refused_accepts_started_nothing, acknowledged_kept,
              reads_are_monotonic, reads_come_from_the_log)
