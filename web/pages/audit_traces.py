"""One event's transactions, traced through the logs of every site. Pure: no I/O.

    traces = transactions(logs)   # logs: {site: [audit entry, ...], or None: unreachable}

An audit entry is what `GET /api/events/{id}/audit` lists: {"at", "role", "type", "data"}.
Each stored record becomes one step (an acknowledgement one per site it names): an arrow for
what its site learnt from another (a prepare, a decision, an acknowledgement, a vote report) or
a note for what a site did by itself (began, decided, voted). What the logs imply without a
record of its own is a step too: a prepare that got no answer before an abort, a site still in
doubt after the decision. A record seen twice, or an outcome applied long after the decision
(resent, or asked for after a restart), is marked `again`; an abort decided on a coordinator's
restart says so. web.pages.sequence_diagram draws them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.records import acknowledging_sites

LATE_S = 1.0  # an outcome applied this long after the decision was resent or asked for
RESTARTED = "coordinator_restarted"
VOTES = "votes of round "  # the key of a round's votes (transaction ids are "<site>-...")

# Causal order within a transaction; rows of one rank are in time order.
_RANK = {"Began": 0, "Prepared": 1, "Refused": 1, "Decided": 2, "Committed": 3, "Aborted": 3,
         "Acknowledged": 3, "VoteCast": 0, "Withdrawn": 0, "Reported": 0}


@dataclass(frozen=True)
class Step:
    at: datetime
    source: int  # the lane it starts from; a note has source == target and arrow False
    target: int
    label: str
    tone: str = "plain"  # plain | good | bad | warn
    arrow: bool = True
    again: bool = False  # a repeat, or late: a retry as far as the logs show it
    lost: bool = False  # a message that got no answer: the arrow ends in a cross
    detail: str = ""
    rank: float = 0


@dataclass(frozen=True)
class Trace:
    key: str  # the transaction id, or VOTES + N for the votes of round N
    title: str
    coordinator: int | None
    outcome: str
    tone: str
    steps: tuple[Step, ...]
    attempt_of: str = ""  # what it tried to do: retries of one upload or round share it

    @property
    def started(self) -> datetime:
        return self.steps[0].at

    @property
    def ended(self) -> datetime:
        return self.steps[-1].at


@dataclass(frozen=True)
class Attempts:
    """One thing a coordinator tried, maybe several times: the last try, and those before it
    (a conflict with another transaction is retried; it is normal, not a failure)."""

    last: Trace
    earlier: tuple[Trace, ...] = ()

    @property
    def conflicts(self) -> int:
        return sum(t.outcome.endswith(("(conflict)", "(retry)")) for t in self.earlier)


def person(user: str, names: Mapping[str, str] | None = None) -> str:
    """A person as the audit shows them: their chosen name, or a short form of their id."""
    return (names or {}).get(user) or f"guest {user[:6]}"


def describe_payload(payload: Mapping | None, names: Mapping[str, str] | None = None) -> str:
    payload = payload or {}
    kind = payload.get("type")
    if kind == "CreateEvent":
        return f"create the event “{payload.get('title', '')}”"
    if kind == "AddPhotos":
        photos = payload.get("photos") or []
        who = sorted({person(p.get("submitter", ""), names) for p in photos})
        noun = "photo" if len(photos) == 1 else "photos"
        return f"add {len(photos)} {noun} by {', '.join(who)} on version {payload.get('base_version')}"
    if kind == "StartRound":
        return f"start vote round {payload.get('round')} on version {payload.get('version')}"
    if kind == "Publish":
        return f"collect the votes of round {payload.get('round')} (publish version {payload.get('version')}?)"
    return "an unknown change"


def names_in(logs: Mapping[int, Sequence[Mapping] | None]) -> dict[str, str]:
    """Display names as the photos in the logs carry them."""
    names = {}
    for entries in logs.values():
        for entry in entries or ():
            for photo in ((entry.get("data") or {}).get("payload") or {}).get("photos") or ():
                if photo.get("submitter_name"):
                    names[photo["submitter"]] = photo["submitter_name"]
    return names


def _at(entry: Mapping) -> datetime:
    return datetime.fromisoformat(entry["at"])


def transactions(logs: Mapping[int, Sequence[Mapping] | None],
                 names: Mapping[str, str] | None = None) -> list[Trace]:
    """One trace per transaction and per round's votes, oldest first (names: user id -> shown
    name, by default those the logged photos carry)."""
    names = names_in(logs) if names is None else names
    groups: dict[str, list[tuple[int, Mapping]]] = {}
    for site, entries in logs.items():
        for entry in entries or ():
            data = entry.get("data") or {}
            if "txn_id" in data:
                groups.setdefault(str(data["txn_id"]), []).append((site, entry))
            elif entry.get("type") in ("VoteCast", "Reported"):
                groups.setdefault(f"{VOTES}{data.get('round')}", []).append((site, entry))
    reachable = {site for site, entries in logs.items() if entries is not None}
    traces = [
        _votes(key, rows, names) if key.startswith(VOTES) else _transaction(key, rows, reachable, names)
        for key, rows in groups.items()
    ]
    return sorted(traces, key=lambda t: t.started)


def _coordinator(txn_id: str, rows) -> int | None:
    for site, entry in rows:
        if entry["type"] == "Began":
            return site
    for _, entry in rows:
        if "coordinator" in entry.get("data", {}):
            return int(entry["data"]["coordinator"])
    head = txn_id.split("-", 1)[0]
    return int(head) if head.isdigit() else None


def _transaction(txn_id: str, rows, reachable: set[int], names) -> Trace:
    coordinator = _coordinator(txn_id, rows)
    if coordinator is None:
        coordinator = rows[0][0]
    began = next((e for _, e in rows if e["type"] == "Began"), None)
    decided = next((e for _, e in rows if e["type"] == "Decided"), None)
    payload = next((e["data"]["payload"] for _, e in rows if e.get("data", {}).get("payload")), None)
    steps, seen = [], set()
    for site, entry in _acks_one_by_one(rows):
        step = _txn_step(site, entry, coordinator, decided)
        if step is None:
            continue
        key = (site, entry["type"], json.dumps(entry.get("data"), sort_keys=True))
        if key in seen:
            step = _again(step, "again")
        seen.add(key)
        steps.append(step)
    steps += _implied(rows, reachable, coordinator, began, decided)
    outcome, tone = _outcome(rows, decided)
    return Trace(txn_id, describe_payload(payload, names), coordinator, outcome, tone,
                 tuple(sorted(steps, key=lambda s: (s.at, s.rank))), _attempt_of(txn_id, payload))


def _acks_one_by_one(rows):
    """The rows with each Acknowledged record as one row per site it names (an arrow each)."""
    for site, entry in rows:
        if entry["type"] != "Acknowledged":
            yield site, entry
            continue
        data = entry.get("data") or {}
        for acknowledging in acknowledging_sites(data):
            yield site, {**entry, "data": {"txn_id": data.get("txn_id"), "site": acknowledging}}


def _photos_of(trace: Trace) -> list[str]:
    """The photo ids an upload's trace carried (none for any other change)."""
    kind, _, photos = trace.attempt_of.partition(" ")
    return photos.split() if kind == "photos" else []


def _attempt_of(txn_id: str, payload: Mapping | None) -> str:
    """Tries of one change share this: an upload's photos, a round's start or collection."""
    payload = payload or {}
    kind = payload.get("type")
    if kind == "AddPhotos":
        return "photos " + " ".join(sorted(str(p.get("photo_id", "")) for p in payload.get("photos") or ()))
    if kind in ("StartRound", "Publish"):
        return f"{kind} {payload.get('round')}"
    return txn_id


def attempts(traces: Sequence[Trace]) -> list[Attempts]:
    """Traces folded by what they attempted, in the order of each one's last try. Uploads that
    wait at a site together share a transaction (web.uploading), and a retry may carry more of
    them than the try before: an upload's try folds into the transaction that committed its
    photos (each photo commits once), else with the tries of the same photos."""
    committed_by = {photo: trace.attempt_of for trace in traces if trace.outcome == "committed"
                    for photo in _photos_of(trace)}
    groups: dict[str, list[Trace]] = {}
    for trace in traces:
        owners = sorted({committed_by[p] for p in _photos_of(trace) if p in committed_by})
        key = owners[0] if owners else (trace.attempt_of or trace.key)
        groups.setdefault(key, []).append(trace)
    folded = [Attempts(tries[-1], tuple(tries[:-1])) for tries in groups.values()]
    return sorted(folded, key=lambda a: a.last.started)


def with_restarts(trace: Trace, starts: Mapping[int, Sequence[Mapping]]) -> Trace:
    """The trace with a note on a site's lane where that site (re)started while it ran."""
    notes = []
    for site, found in starts.items():
        for start in found:
            at = datetime.fromisoformat(start["at"])
            if trace.started < at < trace.ended:
                label = "↯ crashed; restarted" if start.get("after_crash") else "↻ restarted"
                notes.append(Step(at, site, site, label, "warn", False,
                                  detail=f"site {site} started again at {start['at']}"))
    if not notes:
        return trace
    steps = tuple(sorted((*trace.steps, *notes), key=lambda s: (s.at, s.rank)))
    return Trace(trace.key, trace.title, trace.coordinator, trace.outcome, trace.tone, steps, trace.attempt_of)


def _again(step: Step, why: str) -> Step:
    return Step(step.at, step.source, step.target, f"{step.label} ({why})", step.tone, step.arrow,
                True, step.lost, step.detail, step.rank)


def _txn_step(site: int, entry: Mapping, coordinator: int, decided: Mapping | None) -> Step | None:
    kind, data, at = entry["type"], entry.get("data") or {}, _at(entry)
    detail = f"site {site}, {entry.get('role', '')}: {kind} at {entry['at']}"
    rank = _RANK.get(kind, 3)
    if kind == "Began":
        sites = ", ".join(str(s) for s in data.get("sites", ()))
        return Step(at, site, site, f"begin; prepare to {sites}", "plain", False, detail=detail, rank=rank)
    if kind == "Prepared":
        return Step(at, coordinator, site, "prepare → yes", "good", detail=detail, rank=rank)
    if kind == "Refused":
        return Step(at, coordinator, site, f"prepare → no: {data.get('reason')}", "bad",
                    detail=detail, rank=rank)
    if kind == "Decided":
        if data.get("commit"):
            return Step(at, site, site, "decide: commit", "good", False, detail=detail, rank=rank)
        reason = data.get("reason")
        if reason == RESTARTED:
            return Step(at, site, site, "↯ restarted: abort", "warn", False, detail=detail, rank=rank)
        return Step(at, site, site, f"decide: abort ({reason})", "bad", False, detail=detail, rank=rank)
    if kind in ("Committed", "Aborted"):
        label = "commit" if kind == "Committed" else f"abort ({data.get('reason')})"
        step = Step(at, coordinator, site, label, "good" if kind == "Committed" else "bad",
                    detail=detail, rank=rank)
        if decided is not None and (delay := (at - _at(decided)).total_seconds()) > LATE_S:
            step = _again(step, f"{duration(delay)} after the decision")
        return step
    if kind == "Acknowledged":
        return Step(at, int(data.get("site", site)), site, "ack", "plain", detail=detail, rank=rank)
    return None


def _implied(rows, reachable: set[int], coordinator: int, began, decided) -> list[Step]:
    """What the logs show by a missing record: no answer to a prepare, a site still in doubt."""
    if decided is None:
        return []
    by_site: dict[int, set[str]] = {}
    for site, entry in rows:
        by_site.setdefault(site, set()).add(entry["type"])
    aborted, reason = not decided["data"].get("commit"), decided["data"].get("reason")
    before_decision = _at(decided) - timedelta(microseconds=1)
    steps = []
    for site in (began or {}).get("data", {}).get("sites", ()):
        kinds = by_site.get(site, set())
        if site not in reachable:
            if aborted and reason == "unreachable":
                steps.append(Step(before_decision, coordinator, site, "prepare: answer unknown", "warn",
                                  lost=True, detail=f"site {site}'s log is unavailable", rank=1.5))
            continue
        if aborted and not kinds & {"Prepared", "Refused"}:
            steps.append(Step(before_decision, coordinator, site, "prepare: no answer in time", "bad",
                              lost=True, detail=f"site {site} has no record of the prepare", rank=1.5))
        if "Prepared" in kinds and not kinds & {"Committed", "Aborted"}:
            last = max(_at(e) for s, e in rows if s == site)
            steps.append(Step(last, site, site, "in doubt: outcome not yet applied", "warn", False,
                              detail=f"site {site} prepared and has no outcome yet", rank=4))
    return steps


def _outcome(rows, decided) -> tuple[str, str]:
    if decided is not None:
        data = decided["data"]
        if data.get("commit"):
            return "committed", "good"
        if data.get("reason") == "retry":  # a collection attempt a site could not take: tried again
            return "aborted (retry)", "warn"
        return f"aborted ({data.get('reason')})", "bad"
    kinds = {e["type"] for _, e in rows}
    if "Committed" in kinds:
        return "committed", "good"
    if "Aborted" in kinds:
        return "aborted", "bad"
    return "undecided", "warn"


def _votes(key: str, rows, names) -> Trace:
    steps = []
    home = next((site for site, e in rows if e["type"] == "Reported"), None)
    for site, entry in rows:
        ballot = (entry.get("data") or {}).get("ballot") or {}
        decision = ballot.get("decision", "?")
        tone = "good" if decision == "accept" else "bad"
        detail = f"site {site}: {entry['type']} at {entry['at']}"
        who = person(ballot.get("user", ""), names)
        if entry["type"] == "VoteCast":
            steps.append(Step(_at(entry), site, site, f"{who} votes {decision}", tone, False, detail=detail))
        else:
            steps.append(Step(_at(entry), int(ballot.get("site", site)), site, f"report: {who} {decision}s",
                              tone, detail=detail))
    steps.sort(key=lambda s: s.at)
    return Trace(key, key, home, "", "plain", tuple(steps))


def duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"
