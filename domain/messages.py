"""The messages of the two-phase-commit protocol (their JSON form for the wire: domain.wire).

Messages are frozen dataclasses: actors pass them by reference. Every site-to-site message names
its transaction (`txn_id`) and event, which makes it idempotent: a duplicate gets the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- payloads: what a transaction does once committed ------------------------------------------


@dataclass(frozen=True)
class PhotoMeta:
    photo_id: str
    sha256: str
    thumb_sha256: str
    submitter: str
    site: int
    submitter_name: str = ""  # the display name the submitter chose, if any


ACCEPT, REJECT = "accept", "reject"


@dataclass(frozen=True)
class Ballot:
    """One vote as the site where it was cast stored it; `at` is that site's clock (epoch s)."""

    user: str
    decision: str
    at: float
    site: int


@dataclass(frozen=True)
class CreateEvent:
    title: str
    home_site: int
    created_at: str


@dataclass(frozen=True)
class AddPhotos:
    base_version: int
    photos: tuple[PhotoMeta, ...]


@dataclass(frozen=True)
class StartRound:
    """Freeze the event at `version` and open voting round `round` until `deadline` (epoch s).

    `request` names the accept that asked for the round (made by the voter's site, so a copy of
    the request can be recognised and a withdrawn one refused); `ballot` is that accept, which
    the round starts with: the commit that opens the round also records the first vote."""

    round: int
    version: int
    deadline: float
    submitters: tuple[str, ...]
    request: str = ""
    ballot: Ballot | None = None


@dataclass(frozen=True)
class Publish:
    """Collect round `round`, attempt `attempt`: committed, it publishes `version`; aborted with
    reason RETRY, the round goes on (the home site tries again); aborted otherwise, it aborts."""

    round: int
    version: int
    deadline: float
    submitters: tuple[str, ...]
    attempt: int = 1


# The abort of a collection attempt that failed for a site's sake (a participant unreachable or
# in the way, the home site restarted) before the deadline plus the grace period: not the end
# of the round, whose sites reopen voting while the home site tries again.
RETRY = "retry"
# The reasons a collection's abort can end its round with (domain.round_master decides them).
ROUND_ENDINGS = ("rejected", "timeout", "unreachable")


Payload = CreateEvent | AddPhotos | StartRound | Publish

# --- site-to-site requests and their replies -----------------------------------------------------


@dataclass(frozen=True)
class Prepare:
    txn_id: str
    event_id: str
    coordinator: int
    payload: Payload


@dataclass(frozen=True)
class Vote:
    txn_id: str
    event_id: str
    site: int
    yes: bool
    reason: str | None = None
    ballots: tuple[Ballot, ...] = ()  # a yes to a Publish carries the votes cast here


@dataclass(frozen=True)
class Decision:
    """The payload travels with the decision so that a site which never saw the prepare (it was
    unreachable) can still apply what an abort means, e.g. a round that ends."""

    txn_id: str
    event_id: str
    commit: bool
    reason: str | None = None
    payload: Payload | None = None


@dataclass(frozen=True)
class Ack:
    txn_id: str
    event_id: str
    site: int


@dataclass(frozen=True)
class Query:
    """A participant in doubt asks a peer what became of a transaction."""

    txn_id: str
    event_id: str
    site: int
    coordinator: int


@dataclass(frozen=True)
class Outcome:
    """The answer to a Query: commit True/False, or None when the peer does not know (yet)."""

    txn_id: str
    event_id: str
    site: int
    commit: bool | None
    reason: str | None = None
    payload: Payload | None = None


@dataclass(frozen=True)
class VoteReport:
    """From the ballot site of a vote to the event's home site, until acknowledged (ReportAck,
    once the home site stored it); `attempt` counts the sends, for the back-off."""

    event_id: str
    round: int
    ballot: Ballot
    attempt: int = 0


@dataclass(frozen=True)
class ReportAck:
    event_id: str
    round: int
    user: str


@dataclass(frozen=True)
class CountRelay:
    """From the home site to every site, best effort: the votes of round `round` it has counted
    so far (pages show the event-wide count; the authoritative count is the collection's)."""

    event_id: str
    round: int
    ballots: tuple[Ballot, ...]


@dataclass(frozen=True)
class VoteRequest:
    """A vote cast at a site that does not hold the person's ballot, forwarded to the site that
    does (their ballot site) and answered from there. Idempotent: `at` names the vote, so a
    copy gets the answer the first one got."""

    event_id: str
    user: str
    version: int
    decision: str
    at: float


@dataclass(frozen=True)
class VoteReply:
    """The ballot site's answer to a VoteRequest: recorded in `round` (until `deadline`), or the
    error code that refused it."""

    event_id: str
    round: int | None
    deadline: float | None
    error: str | None = None
    message: str | None = None  # the refusal in words, as the ballot site put it


@dataclass(frozen=True)
class RoundRequest:
    """From the site of a first accept to the home site: start a round on `version` that opens
    with `ballot`. Idempotent by `request`: a copy gets the round that request started."""

    event_id: str
    version: int
    request: str = ""
    ballot: Ballot | None = None


@dataclass(frozen=True)
class RoundAnswer:
    """`mine`: the round was started by this request (its ballot is in it), by the StartRound
    `txn_id` when the answer comes from that commit; otherwise a round already running on the
    version (the voter votes in it) or, with `error`, why none was started for the request."""

    event_id: str
    round: int | None
    deadline: float | None
    error: str | None = None
    mine: bool = False
    txn_id: str | None = None


# --- local messages: from the site's own service layer, timers and transport --------------------


@dataclass(frozen=True)
class Begin:
    txn_id: str
    event_id: str
    payload: Payload
    sites: tuple[int, ...]
    # The site prepared first (the event's home site), the others once it voted yes; None: all
    # at once. Two sites' transactions of one event then meet at one site, where one of them is
    # refused before any other site prepared it, rather than each being prepared somewhere and
    # refused elsewhere (both aborted, and every site's prepare or refusal wasted).
    first: int | None = None


@dataclass(frozen=True)
class CheckedPrepare:
    """A Prepare as the participant's step sees it, with the sha256s of the files it names
    that the site does not hold (the actor looked before the step: the step does no I/O)."""

    prepare: Prepare
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class Unreachable:
    """The transport could not deliver `request` to `site` (refused, reset, timed out)."""

    site: int
    request: Prepare | Decision | Query | VoteReport


@dataclass(frozen=True)
class PrepareTimeout:
    txn_id: str


@dataclass(frozen=True)
class ResendDecision:
    txn_id: str
    attempt: int


@dataclass(frozen=True)
class AckWaitOver:
    txn_id: str


@dataclass(frozen=True)
class AskOutcome:
    """Timer of a prepared participant: if still in doubt, ask the others."""

    txn_id: str
    attempt: int


@dataclass(frozen=True)
class CastVote:
    """A vote from a person at this site, stamped with this site's clock."""

    event_id: str
    user: str
    version: int
    decision: str
    at: float


@dataclass(frozen=True)
class VoteAnswer:
    """The participant's answer to CastVote: recorded, or the reason it was refused."""

    round: int | None
    deadline: float | None
    error: str | None = None


@dataclass(frozen=True)
class Withdraw:
    """From this site's voting: give up round request `request` unless it is already settled.
    Answered WITHDRAWN (stored: this site will refuse that request's StartRound, so it can never
    start a round), STARTED (it committed here) or IN_DOUBT (prepared here, undecided)."""

    event_id: str
    request: str


WITHDRAWN, STARTED, IN_DOUBT = "withdrawn", "started", "in_doubt"


@dataclass(frozen=True)
class RoundDeadline:
    round: int


@dataclass(frozen=True)
class CollectAgain:
    """Timer of the home site after a collection attempt failed for a site's sake: begin
    attempt `attempt` of round `round` unless the round has moved on."""

    round: int
    attempt: int


@dataclass(frozen=True)
class ReportAgain:
    """Timer of a ballot site whose report of `user`'s vote got no acknowledgement."""

    round: int
    user: str
    attempt: int


@dataclass(frozen=True)
class Recover:
    """Sent once to every actor rebuilt from the log at start-up."""
