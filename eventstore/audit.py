"""Replay one event's log at every site into one timeline and check that the sites agree.

    python -m eventstore.audit EVENT_ID [--settings PATH] [--data-dir DIR]

Exit status 0 when the sites agree, 1 when they do not (2 for a usage error).
"""

from __future__ import annotations

import argparse
import sys

from domain.agreement import check
from eventstore.store import LogEntry, SiteStore


def summary(entry: LogEntry) -> str:
    data = dict(entry.data)
    payload = data.pop("payload", None)
    parts = [f"{k}={v}" for k, v in data.items()]
    if isinstance(payload, dict):
        if payload.get("type") == "AddPhotos":
            shas = [p["sha256"][:12] for p in payload.get("photos", [])]
            parts.append(f"add {len(shas)} photo(s) on v{payload.get('base_version')}: {' '.join(shas)}")
        elif payload.get("type") == "CreateEvent":
            parts.append(f"create {payload.get('title')!r} home={payload.get('home_site')}")
    return " ".join(parts)


def merged_timeline(logs: dict[int, list[LogEntry]]) -> list[tuple[int, LogEntry]]:
    rows = [(site, e) for site, entries in logs.items() for e in entries]
    return sorted(rows, key=lambda row: (row[1].at, row[0]))


def read_logs(settings, event_id: str) -> dict[int, list[LogEntry]]:
    logs = {}
    for site in settings.sites:
        site_dir = settings.site_dir(site)
        if settings.database == "sqlite" and not (site_dir / "events.sqlite").exists():
            logs[site] = []
            continue
        store = SiteStore(settings.database_url(site), site_dir)
        try:
            logs[site] = store.log(event_id)
        finally:
            store.close()
    return logs


def main(argv=None) -> int:
    from web.settings import load_settings  # the CLI reads the same settings as the sites

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("event_id")
    parser.add_argument("--settings")
    parser.add_argument("--data-dir")
    parser.add_argument("--sites", type=int)
    args = parser.parse_args(argv)
    settings = load_settings(args.settings, data_dir=args.data_dir, site_count=args.sites)
    logs = read_logs(settings, args.event_id)
    if not any(logs.values()):
        print(f"no site has a log for event {args.event_id}")
        return 1
    for site, entry in merged_timeline(logs):
        print(f"{entry.at.isoformat(timespec='milliseconds')}  site {site}  {entry.role:<11}  "
              f"{entry.type:<12}  {summary(entry)}")
    records = {site: [e.record for e in entries if e.record is not None] for site, entries in logs.items()}
    verdict = check(args.event_id, records)
    for line in verdict.pending:
        print(f"pending: {line}")
    for line in verdict.problems:
        print(f"DISAGREE: {line}")
    print("verdict: the sites agree" if verdict.agree else "verdict: the sites DISAGREE")
    return 0 if verdict.agree else 1


if __name__ == "__main__":
    sys.exit(main())
