"""What the event page shows, in words, for the person looking: a pure function of the state.

The templates only lay this out; every sentence a person reads about an event is made here, so
the page, its live parts and the no-script fallback say the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from domain.event_state import EventState, RoundOutcome
from web.views import iso

OUTCOME_REASONS = {
    "rejected": "someone rejected the montage",
    "timeout": "not everyone voted before the deadline",
    "unreachable": "a site could not be reached to count the votes",
}


def clock(seconds: float) -> str:
    """A countdown as a person reads it: 1:05."""
    whole = max(0, int(seconds + 0.999))
    return f"{whole // 60}:{whole % 60:02d}"


def period(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:g} seconds"
    return f"{seconds / 60:g} minutes"


def names_of(state: EventState) -> dict[str, str]:
    """Each submitter's display name: the most recent non-empty one among their photos, shown
    beside all of them (a name set after one's last upload is known only to one's own cookie)."""
    names: dict[str, str] = {}
    for photo in state.photos:
        if photo.submitter_name:
            names[photo.submitter] = photo.submitter_name
    return names


def outcome_sentence(last: RoundOutcome | None) -> str:
    if last is None:
        return ""
    if last.outcome == "published":
        return f"Round {last.round} published the montage."
    why = OUTCOME_REASONS.get(last.reason or "", "it could not be completed")
    return f"Round {last.round} was aborted: {why}. The event is open again."


def published_at(entries: Iterable) -> datetime | None:
    """When this site committed the publication, from its log (LogEntry-like rows)."""
    publishing = {e.data.get("txn_id") for e in entries
                  if e.type == "Prepared" and (e.data.get("payload") or {}).get("type") == "Publish"}
    return next((e.at for e in entries if e.type == "Committed" and e.data.get("txn_id") in publishing),
                None)


def event_view(state: EventState, user_id: str, *, now: float, voting_period_s: float,
               max_contributors: int, published: datetime | None = None, my_name: str = "") -> dict:
    names = {**names_of(state), **({user_id: my_name} if my_name else {})}
    guests = {u: f"guest {i}" for i, u in enumerate(state.submitters, 1)}
    mine = user_id in state.submitters
    visible = mine or state.published

    def who(user: str) -> str:
        if user == user_id:
            return f"{names[user]} (you)" if names.get(user) else "you"
        return names.get(user) or guests.get(user) or "a guest"

    photos = [{"photo_id": p.photo_id, "version": v, "by": who(p.submitter), "mine": p.submitter == user_id}
              for v, p in enumerate(state.photos, 1)] if visible else []
    full = not mine and len(state.submitters) >= max_contributors
    return {
        "event_id": state.event_id,
        "title": state.title,
        "phase": state.phase,
        "version": state.version,
        "photo_count": state.version,
        "people_count": len(state.submitters),
        "is_submitter": mine,
        "visible": visible,
        "photos": photos,
        "people": [who(u) for u in state.submitters] if visible else [],
        "who": {u: who(u) for u in state.submitters} if visible else {},
        "banner": _banner(state, mine, voting_period_s),
        "upload": _upload(state, full, max_contributors),
        "vote": _vote(state, user_id, mine, now, who),
        "voting_period": period(voting_period_s),
        "outcome": outcome_sentence(state.last_outcome),
        "outcome_kind": state.last_outcome.outcome if state.last_outcome else "",
        "published_version": state.published_version,
        "published_iso": published.isoformat(timespec="seconds") if published else "",
        "published_text": published.strftime("%-d %b %Y, %H:%M UTC") if published else "",
    }


def _banner(state: EventState, mine: bool, voting_period_s: float) -> dict:
    if state.published:
        return {"kind": "published", "title": "Published",
                "text": f"Montage version {state.published_version} is public, for good."}
    if state.round is not None:
        return {"kind": "voting", "title": f"Voting on version {state.round.version}",
                "text": "Uploads are paused until the vote ends: published if everyone accepts, "
                        "open again otherwise."}
    if not state.version:
        text = "Add the first photo. When everyone has added theirs, accept the montage to start a vote."
    elif mine:
        text = (f"Add more photos, or accept the montage to start a vote: everyone who added photos "
                f"then has {period(voting_period_s)} to accept or reject it.")
    else:
        text = "Add a photo to see everyone's photos and to vote on the montage."
    return {"kind": "open", "title": "Open for photos", "text": text}


def _upload(state: EventState, full: bool, max_contributors: int) -> dict:
    if state.published:
        return {"enabled": False, "why": "This event is published: it takes no more photos."}
    if state.round is not None:
        return {"enabled": False,
                "why": f"Uploads are paused while the vote on version {state.round.version} runs. "
                       "If the vote is aborted, uploads open again."}
    if full:
        return {"enabled": False,
                "why": f"This event has {max_contributors} contributors, the most it allows."}
    return {"enabled": True, "why": ""}


def _vote(state: EventState, user_id: str, mine: bool, now: float, who) -> dict:
    current = state.round
    if current is None:
        can_start = mine and not state.published and state.version > 0
        return {"running": False, "can_start": can_start, "version": state.version}
    ballot = current.ballots.get(user_id)
    accepted_by: Mapping = {u: b for u, b in current.ballots.items() if b.decision == "accept"}
    return {
        "running": True,
        "round": current.round,
        "version": current.version,
        "deadline_iso": iso(current.deadline),
        "remaining": clock(current.deadline - now),
        "accepted": current.accepted,
        "required": len(current.submitters),
        "accepted_by": [who(u) for u in accepted_by] if mine else [],
        "my_vote": ballot.decision if ballot else None,
        "closed": state.collecting or now >= current.deadline,
        "can_vote": user_id in current.submitters and ballot is None,
    }
