"""The vote tally: a pure function from a round's ballots to PENDING, PUBLISH or ABORT."""

from __future__ import annotations

from collections.abc import Iterable

from domain.messages import ACCEPT, REJECT, Ballot

PENDING, PUBLISH, ABORT = "pending", "publish", "abort"


def tally(submitters: Iterable[str], ballots: Iterable[Ballot], deadline: float,
          final: bool) -> tuple[str, str | None]:
    """(verdict, reason). Only ballots cast by the deadline count; any reject vetoes, whichever
    site it was cast at; publication needs an accept from every submitter. With `final` False
    (reports still coming in), a round that is not yet decided is PENDING."""
    counted = [b for b in ballots if b.at <= deadline]
    if any(b.decision == REJECT for b in counted):
        return ABORT, "rejected"
    accepted = {b.user for b in counted if b.decision == ACCEPT}
    if set(submitters) <= accepted:
        return PUBLISH, None
    return (ABORT, "timeout") if final else (PENDING, None)
