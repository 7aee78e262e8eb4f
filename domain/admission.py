"""Whether a participant may vote yes on a transaction, and whether a person may cast a vote:
the rules of each kind, in one place.

The reasons double as the client's error codes, except "conflict", which only means another
transaction got there first and the coordinator should try again.
"""

from __future__ import annotations

from domain.config import SiteConfig
from domain.event_state import EventState
from domain.messages import ACCEPT, REJECT, AddPhotos, CastVote, CreateEvent, Payload, Publish, StartRound

CONFLICT = "conflict"
REQUEST_SPENT = "request_spent"
# A copy of a vote already kept here (the same person, decision and time): not a second vote.
ALREADY_CAST = "already_cast"
# A vote for a person whose ballot site is another: their site takes it (web.voting forwards).
NOT_BALLOT_SITE = "not_ballot_site"
# Some file an upload names is not at the site: it was never shipped there, or was lost. The
# upload site ships again and retries.
MISSING_PHOTOS = "missing_photos"


def _open_for_changes(state: EventState) -> str | None:
    if not state.exists:
        return "unknown_event"
    if state.published:
        return "event_published"
    if state.round is not None:
        return "voting_in_progress"
    if state.prepared is not None:
        return CONFLICT
    return None


def refusal_reason(state: EventState, payload: Payload, config: SiteConfig,
                   missing: tuple[str, ...] = ()) -> str | None:
    """Why this site must vote no, or None; `missing`: named files the site does not hold."""
    if isinstance(payload, CreateEvent):
        if state.exists or state.prepared is not None:
            return "event_exists"
        return None
    if isinstance(payload, AddPhotos):
        if reason := _open_for_changes(state):
            return reason
        if state.version != payload.base_version:
            return CONFLICT
        submitters = set(state.submitters) | {p.submitter for p in payload.photos}
        if len(submitters) > config.max_contributors:
            return "contributor_limit"
        if missing:
            return MISSING_PHOTOS
        return None
    if isinstance(payload, StartRound):
        if payload.request and (payload.request in state.withdrawn or payload.request in state.started):
            return REQUEST_SPENT  # a late copy of a request that was given up, or already served
        if reason := _open_for_changes(state):
            return reason
        if state.version != payload.version:
            return "superseded_montage"
        return None
    if isinstance(payload, Publish):
        if state.round is None or state.round.round != payload.round:
            return "no_such_round"
        if state.prepared is not None:
            return CONFLICT
        return None
    return "unknown_transaction_kind"


def ballot_site(state: EventState, user: str) -> int | None:
    """The site that holds `user`'s votes: where their first photo in the event was uploaded.
    Every site knows it from the replicated photo list, and no photo is added while a round
    runs, so it is the same everywhere for the whole round."""
    return next((p.site for p in state.photos if p.submitter == user), None)


def vote_refusal(state: EventState, vote: CastVote, site: int) -> str | None:
    """Why this site (`site`) must refuse a vote now, or None. (An accept on an open event is
    not refused here: it starts a round first, at the home site.)"""
    if not state.exists:
        return "unknown_event"
    kept = state.recorded.get((vote.user, vote.at))
    if kept is not None and kept[2] == vote.decision:
        return ALREADY_CAST  # whatever happened since (the round may have ended)
    if vote.decision not in (ACCEPT, REJECT):
        return "invalid_request"
    if state.published:
        return "event_published"
    if vote.user not in state.submitters:
        return "not_submitter"
    current = state.round
    if current is None:
        return "no_vote_in_progress"
    if vote.version != current.version:
        return "superseded_montage"
    if vote.user in current.ballots:
        return "already_voted"
    if ballot_site(state, vote.user) != site:
        return NOT_BALLOT_SITE
    if state.collecting or vote.at > current.deadline:
        return "voting_closed"
    return None


def starts_round(state: EventState, user: str, decision: str, at: float) -> bool:
    """Whether this vote is the accept that opens a round (at the home site) before it counts:
    a submitter accepting an event that is open. Not a copy of an accept kept here (the same
    person and `at`, forwarded again after its answer was lost), even once its round has ended:
    it gets the answer it had (`vote_refusal`: ALREADY_CAST), never a round of its own."""
    return (state.round is None and decision == ACCEPT and not state.published
            and user in state.submitters and (user, at) not in state.recorded)
