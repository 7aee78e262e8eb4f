"""How an event looks in the JSON API, for the person asking."""

from __future__ import annotations

from domain.event_state import EventState


def photo_json(photo, version: int) -> dict:
    return {
        "photo_id": photo.photo_id,
        "sha256": photo.sha256,
        "submitter": photo.submitter,
        "site": photo.site,
        "version": version,
    }


def event_json(state: EventState, site: int, user_id: str) -> dict:
    is_submitter = user_id in state.submitters
    visible = is_submitter
    return {
        "event_id": state.event_id,
        "title": state.title,
        "home_site": state.home_site,
        "site": site,
        "url": f"/events/{state.event_id}",
        "created_at": state.created_at,
        "state": "open",
        "montage_version": state.version,
        "photos": [photo_json(p, v) for v, p in enumerate(state.photos, 1)] if visible else [],
        "submitters": list(state.submitters) if visible else [],
        "photo_count": state.version,
        "submitter_count": len(state.submitters),
        "vote": None,
        "last_outcome": None,
        "published_version": None,
        "you": {"user_id": user_id, "is_submitter": is_submitter},
    }
