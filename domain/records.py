"""What each protocol role writes to stable storage before it acts: its log records.

A participant's records live in the event's `PhotoEvent` aggregate at its site; a coordinator's
in the event's `Coordination` aggregate at the site that runs the transaction. Replaying a
role's records (`fold`) rebuilds everything that role must remember across a crash.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.messages import Ballot, Payload

# --- participant ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """Voted yes: the payload is durable here and the event is locked until the decision."""

    txn_id: str
    coordinator: int
    payload: Payload


@dataclass(frozen=True)
class Refused:
    """Voted no: this transaction can only abort."""

    txn_id: str
    coordinator: int
    reason: str


@dataclass(frozen=True)
class Committed:
    txn_id: str


@dataclass(frozen=True)
class Aborted:
    txn_id: str
    reason: str | None = None
    payload: Payload | None = None  # what the abort means here when nothing was prepared


@dataclass(frozen=True)
class VoteCast:
    """A vote cast at this site: final once stored."""

    round: int
    ballot: Ballot


@dataclass(frozen=True)
class Withdrawn:
    """This site gave up round request `request` for the voter who made it here: the request's
    StartRound is refused here from now on, so it can never open a round."""

    request: str


# --- coordinator ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Began:
    """The intention: prepares may go out. Without a later Decided, recovery aborts it."""

    txn_id: str
    payload: Payload
    sites: tuple[int, ...]


@dataclass(frozen=True)
class Decided:
    txn_id: str
    commit: bool
    reason: str | None


@dataclass(frozen=True)
class Acknowledged:
    """Every site named acknowledged the decision: it is resent to them no more. The coordinator
    stores one when the last site answers, naming all those not named before (logs written
    before 2026-12 hold one record per site, `{"txn_id", "site"}`: read as `sites=(site,)`)."""

    txn_id: str
    sites: tuple[int, ...]


@dataclass(frozen=True)
class Reported:
    """The home site heard of a vote cast somewhere (the authoritative count is the collection's)."""

    round: int
    ballot: Ballot


def acknowledging_sites(data: dict) -> list[int]:
    """The sites an Acknowledged record's stored data names, in either of its forms."""
    if "sites" in data:
        return list(data["sites"])
    return [data["site"]] if "site" in data else []


PARTICIPANT_RECORDS = (Prepared, Refused, Committed, Aborted, VoteCast, Withdrawn)
COORDINATOR_RECORDS = (Began, Decided, Acknowledged, Reported)
Record = Prepared | Refused | Committed | Aborted | VoteCast | Withdrawn | Began | Decided | Acknowledged | Reported
