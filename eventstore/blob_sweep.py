"""Collect the photo files no transaction names: blobs shipped for an upload that aborted (or
never began), parts of blobs whose sender gave up, temp files left by a crash.

A file is removed only if, at the sweep's start, it is older than the grace period and no
committed photo or prepared transaction of any event at this site names it. Names are read
after the sweep's clock is taken; a transaction that prepares after its event was read claimed
its blobs first (`PhotoFiles.claim` refreshes a file's age, under the lock the removal takes),
so its files are younger than the sweep's start, and the grace period keeps them.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from domain.event_state import EventState
from domain.messages import AddPhotos
from eventstore.photo_files import PhotoFiles

log = logging.getLogger(__name__)
_SHA = re.compile(r"[0-9a-f]{64}")


def names_in(state: EventState) -> set[str]:
    """The sha256s an event's participant state names: committed photos and thumbnails, and
    those of the transaction prepared here."""
    photos = list(state.photos)
    if state.prepared is not None and isinstance(state.prepared.payload, AddPhotos):
        photos += state.prepared.payload.photos
    return {sha for p in photos for sha in (p.sha256, p.thumb_sha256)}


def named_blobs(store) -> set[str]:
    """Every sha256 named at this site (read from the store: every event it has a log of)."""
    named: set[str] = set()
    participants, _ = store.logged_events()
    for event_id in participants:
        aggregate = store.load_event(event_id)
        if aggregate is not None:
            named |= names_in(aggregate.state)
    return named


def _sha_of(path: Path) -> str | None:
    found = _SHA.search(path.name)
    return found.group(0) if found else None


def sweep(files: PhotoFiles, named: set[str], grace_s: float, now: float) -> list[Path]:
    """Remove the files that `named` leaves out and whose age at `now` (epoch seconds, taken
    before `named` was read) exceeds grace_s; the paths removed."""
    removed = []
    for folder in files.folders():  # whole files, parts of blobs arriving, temp files
        for path in folder.iterdir():
            if _sha_of(path) in named:
                continue
            with files.lock:
                try:
                    if now - path.stat().st_mtime <= grace_s:
                        continue
                    path.unlink()
                except FileNotFoundError:
                    continue
            removed.append(path)
    return removed


def sweep_site(store, files: PhotoFiles, grace_s: float, now: float) -> list[Path]:
    removed = sweep(files, named_blobs(store), grace_s, now)
    if removed:
        log.info("removed %d photo files no transaction names", len(removed))
    return removed
