"""How an event looks in the JSON API, for the person asking."""

from __future__ import annotations

from datetime import datetime, timezone

from domain.event_state import EventState


def photo_json(photo, version: int, name: str | None = None) -> dict:
    """A photo; `name` is its submitter's name as shown (their latest, see event_json)."""
    return {
        "photo_id": photo.photo_id,
        "sha256": photo.sha256,
        "submitter": photo.submitter,
        "submitter_name": photo.submitter_name if name is None else name,
        "site": photo.site,
        "version": version,
    }


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds")


def display_names(state: EventState) -> dict[str, str]:
    """Each submitter's display name, as their latest photo carries it."""
    return {p.submitter: p.submitter_name for p in state.photos if p.submitter_name}


def vote_json(state: EventState, user_id: str) -> dict | None:
    """`accepted` and `voters` count every vote this site knows of: stored here, or relayed by
    the home site (web.vote_counts)."""
    current = state.round
    if current is None:
        return None
    mine = current.ballots.get(user_id)
    names = display_names(state)
    voters = sorted(current.ballots.values(), key=lambda b: (b.at, b.user))
    return {
        "round": current.round,
        "montage_version": current.version,
        "deadline": iso(current.deadline),
        "accepted": current.accepted,
        "required": len(current.submitters),
        "my_vote": mine.decision if mine else None,
        "closed": state.collecting,
        "voters": [{"user_id": b.user, "name": names.get(b.user)} for b in voters],
    }


def outcome_json(state: EventState) -> dict | None:
    last = state.last_outcome
    if last is None:
        return None
    return {"round": last.round, "outcome": last.outcome, "reason": last.reason}


def event_json(state: EventState, site: int, user_id: str, home_site_reachable: bool = True) -> dict:
    is_submitter = user_id in state.submitters
    visible = is_submitter or state.published
    latest = {p.submitter: p.submitter_name for p in state.photos if p.submitter_name}  # beside all their photos
    return {
        "event_id": state.event_id,
        "title": state.title,
        "home_site": state.home_site,
        "home_site_reachable": home_site_reachable,
        "site": site,
        "url": f"/events/{state.event_id}",
        "created_at": state.created_at,
        "state": state.phase,
        "montage_version": state.version,
        "photos": [photo_json(p, v, latest.get(p.submitter, "")) for v, p in enumerate(state.photos, 1)]
        if visible else [],
        "submitters": list(state.submitters) if visible else [],
        "photo_count": state.version,
        "submitter_count": len(state.submitters),
        "vote": vote_json(state, user_id),
        "last_outcome": outcome_json(state),
        "published_version": state.published_version,
        "you": {"user_id": user_id, "is_submitter": is_submitter},
    }
