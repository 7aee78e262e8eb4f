"""Whether a participant may vote yes on a transaction: the rules of each kind, in one place.

The reasons double as the client's error codes, except "conflict", which only means another
transaction got there first and the coordinator should try again.
"""

from __future__ import annotations

from domain.config import SiteConfig
from domain.event_state import EventState
from domain.messages import AddPhotos, CreateEvent, Payload

CONFLICT = "conflict"


def refusal_reason(state: EventState, payload: Payload, config: SiteConfig) -> str | None:
    if isinstance(payload, CreateEvent):
        if state.exists or state.prepared is not None:
            return "event_exists"
        return None
    if isinstance(payload, AddPhotos):
        if not state.exists:
            return "unknown_event"
        if state.prepared is not None or state.version != payload.base_version:
            return CONFLICT
        submitters = set(state.submitters) | {p.submitter for p in payload.photos}
        if len(submitters) > config.max_contributors:
            return "contributor_limit"
        return None
    return "unknown_transaction_kind"
