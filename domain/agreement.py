"""Do the sites agree? A pure check over every site's stored records for one event."""

from __future__ import annotations

from dataclasses import dataclass

from domain.event_state import EventState, fold
from domain.records import Aborted, Committed, Decided, Prepared, Refused


@dataclass(frozen=True)
class Verdict:
    problems: tuple[str, ...]  # contradictions: the sites disagree
    pending: tuple[str, ...]  # transactions some site still has in doubt (not a contradiction)

    @property
    def agree(self) -> bool:
        return not self.problems


def outcomes_by_site(records_by_site: dict[int, list]) -> dict[str, dict[int, bool]]:
    """txn -> {site: committed?} from participants' conclusions and coordinators' decisions."""
    outcomes: dict[str, dict[int, bool]] = {}
    for site, records in records_by_site.items():
        for r in records:
            if isinstance(r, (Committed, Aborted, Decided)):
                commit = r.commit if isinstance(r, Decided) else isinstance(r, Committed)
                outcomes.setdefault(r.txn_id, {})
                if outcomes[r.txn_id].get(site, commit) != commit:
                    outcomes[r.txn_id][site] = None  # one site said both: flagged below
                else:
                    outcomes[r.txn_id][site] = commit
    return outcomes


def check(event_id: str, records_by_site: dict[int, list]) -> Verdict:
    problems, pending = [], []
    for txn, by_site in sorted(outcomes_by_site(records_by_site).items()):
        if len(set(by_site.values())) > 1 or None in by_site.values():
            said = ", ".join(f"site {s}: {'commit' if c else 'abort' if c is False else 'both'}"
                             for s, c in sorted(by_site.items()))
            problems.append(f"transaction {txn} has different outcomes ({said})")
    states = {}
    for site, records in records_by_site.items():
        state = EventState(event_id)
        for r in records:
            if isinstance(r, (Prepared, Refused, Committed, Aborted)):
                state = fold(state, r)
        states[site] = state
        if state.prepared is not None:
            pending.append(f"site {site} is in doubt about {state.prepared.txn_id}")
    sites = sorted(states)
    for i, a in enumerate(sites):
        for b in sites[i + 1:]:
            pa, pb = states[a].photos, states[b].photos
            shorter = min(len(pa), len(pb))
            for v in range(shorter):
                if pa[v].sha256 != pb[v].sha256 or pa[v].photo_id != pb[v].photo_id:
                    problems.append(f"version {v + 1} differs between site {a} and site {b}")
                    break
    return Verdict(tuple(problems), tuple(pending))
