"""Every site's log of one event, asked over HTTP(S) (`GET /api/events/{id}/audit`), so the
audit works wherever the sites run. A site that does not answer is named, never waited for long.
Offline, with the sites stopped, the logs are read from their stores instead (`read_logs`)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from domain.aggregates import RECORD_TYPES, record_from_data
from pathlib import Path

from eventstore.store import LogEntry, SiteStore

TIMEOUT_S = 10.0


def entry_from_json(entry: dict) -> LogEntry:
    """A LogEntry as the audit API lists it, its domain record rebuilt from its data."""
    name, data = entry["type"], entry.get("data") or {}
    record = record_from_data(name, data) if data and name in RECORD_TYPES else None
    return LogEntry(datetime.fromisoformat(entry["at"]), entry["role"], name, record, data)


def fetch_log(url: str, event_id: str, context: ssl.SSLContext | None) -> list[LogEntry] | str:
    """The site's entries (none when it has no log of the event), or why it did not answer."""
    try:
        with urllib.request.urlopen(f"{url}/api/events/{event_id}/audit", timeout=TIMEOUT_S,
                                    context=context) as response:
            body = json.load(response)
        return [entry_from_json(e) for e in body["entries"]]
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return []
        return f"answered HTTP {e.code}"
    except (urllib.error.URLError, OSError) as e:
        return f"did not answer: {getattr(e, 'reason', None) or e}"
    except (ValueError, KeyError, TypeError) as e:
        return f"answered with a log that could not be read: {e!r}"


def fetch_logs(urls: tuple[str, ...], event_id: str,
               ca: str | None = None) -> dict[int, list[LogEntry] | str]:
    """{site: its entries, or the problem in words}, every site asked at once."""
    context = ssl.create_default_context(cafile=ca) if ca else None
    with ThreadPoolExecutor(max_workers=max(1, len(urls))) as pool:
        answers = pool.map(lambda url: fetch_log(url, event_id, context), urls)
        return dict(enumerate(answers))


def read_logs(database: str, data_dir: Path, sites: int, event_id: str) -> dict[int, list[LogEntry] | str]:
    """{site: its entries, or why its store could not be read}, from each site's own store:
    `database` ("sqlite", or a URL with "{site}") and its folder data_dir/site-K."""
    logs: dict[int, list[LogEntry] | str] = {}
    for k in range(sites):
        site_dir = Path(data_dir) / f"site-{k}"
        if database == "sqlite" and not (site_dir / "events.sqlite").exists():
            logs[k] = "has no store in that data directory"
            continue
        try:
            store = SiteStore(database.replace("{site}", str(k)), site_dir)
        except Exception as e:  # a store that cannot be opened is named, like a silent site
            logs[k] = f"store could not be opened: {e!r}"
            continue
        try:
            logs[k] = store.log(event_id)
        finally:
            store.close()
    return logs
