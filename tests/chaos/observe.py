"""After healing: wait for the sites to settle, then read what they serve and what they stored.

Everything read is written to the run directory (healing.json, views.json, digests.json) so that
`python -m tests.chaos.checker RUN_DIR` can check a run again later; the logs stay in data/.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import time
from datetime import datetime
from pathlib import Path

from eventstore.store import SiteStore
from tests.e2e.cluster import Client

IN_DOUBT_LIMIT_S = 30.0  # nothing may be in doubt this long after healing
ROUND_BOUND_S = 15.0  # no round may still run this long after its deadline (once healed)
ROUNDS_WAIT_MAX_S = 60.0  # however far off the deadlines a site shows
OBSERVER_TIMEOUT_S = 5.0


def observer(url) -> Client:
    """A user who submitted nothing: reads what everyone may read, never waits long."""
    return Client(url, timeout=OBSERVER_TIMEOUT_S)


def _get(client: Client, site: int, path: str) -> tuple[int | None, object]:
    try:
        return client.get_json(site, path)
    except (OSError, http.client.HTTPException) as e:
        return None, repr(e)


def wait_nothing_in_doubt(client: Client, sites, healed_at: float) -> dict:
    """Poll every site's status until none has a transaction in doubt (IN_DOUBT_LIMIT_S)."""
    while True:
        left = {}
        for k in sites:
            status, body = _get(client, k, "/api/status")
            if status != 200:
                left[k] = f"status {status}: {body}"
            elif body["in_doubt"]:
                left[k] = body["in_doubt"]
        waited = time.time() - healed_at
        if not left:
            return {"in_doubt_cleared_after_s": round(waited, 2), "in_doubt_left": {}}
        if waited > IN_DOUBT_LIMIT_S:
            return {"in_doubt_cleared_after_s": None, "in_doubt_left": left}
        time.sleep(0.2)


def read_views(client: Client, sites, event_ids) -> dict[str, dict[int, dict]]:
    views = {}
    for event_id in event_ids:
        views[event_id] = {}
        for k in sites:
            status, body = _get(client, k, f"/api/events/{event_id}")
            views[event_id][k] = body if status == 200 else {"status": status, "body": body}
    return views


def wait_rounds_over(client: Client, sites, event_ids) -> tuple[dict, float]:
    """Views once no site shows a running round, or once the latest deadline seen is
    ROUND_BOUND_S behind us (ROUNDS_WAIT_MAX_S at most); also returns when they were read."""
    limit, give_up = None, time.time() + ROUNDS_WAIT_MAX_S
    while True:
        read_at = time.time()
        views = read_views(client, sites, event_ids)
        deadlines = [datetime.fromisoformat(v["vote"]["deadline"]).timestamp()
                     for by_site in views.values() for v in by_site.values()
                     if v.get("state") == "voting"]
        if not deadlines:
            return views, read_at
        limit = max(limit or 0.0, max(deadlines) + ROUND_BOUND_S, read_at + 2.0)
        if time.time() > min(limit, give_up):
            return views, read_at
        time.sleep(0.5)


def published_digests(client: Client, sites, views) -> dict[str, dict[int, str]]:
    digests = {}
    for event_id, by_site in views.items():
        if any(v.get("state") == "published" for v in by_site.values()):
            digests[event_id] = {}
            for k in sites:
                try:
                    status, data = client.get_bytes(k, f"/public/{event_id}/montage.jpg")
                except (OSError, http.client.HTTPException) as e:
                    status, data = None, repr(e).encode()
                digests[event_id][k] = hashlib.sha256(data).hexdigest() if status == 200 else f"status {status}"
    return digests


def read_logs(settings) -> dict:
    """event -> site -> LogEntry list, for every event any site has a log of (sites stopped)."""
    logs: dict[str, dict[int, list]] = {}
    for k in settings.sites:
        if settings.database == "sqlite" and not (settings.site_dir(k) / "events.sqlite").exists():
            continue  # never started: opening it would make an empty store
        store = SiteStore(settings.database_url(k), settings.site_dir(k))
        try:
            participant, coordinator = store.logged_events()
            for event_id in participant | coordinator:
                logs.setdefault(event_id, {})[k] = store.log(event_id)
        finally:
            store.close()
    for by_site in logs.values():
        for k in settings.sites:
            by_site.setdefault(k, [])
    return logs


def save(run_dir: Path, name: str, data) -> None:
    (run_dir / name).write_text(json.dumps(data, indent=1, sort_keys=True, default=str))


def load(run_dir: Path, name: str):
    path = run_dir / name
    return json.loads(path.read_text()) if path.exists() else {}
