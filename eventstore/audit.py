"""Replay one event's log at every site into one timeline and check that the sites agree.

    python -m eventstore.audit EVENT_ID [--settings PATH] [--sites N] [--ca FILE] [--data-dir DIR]

Every site is asked over HTTP(S) for its log, at the URLs of the settings file the sites read
(eventstore.audit_settings), so the sites may run on other machines. With --data-dir, the sites
are stopped and their stores are read instead (DIR/site-K, on the settings' database). Exit
status 0 when the sites agree, 1 when they do not or a site did not answer, 2 for a usage
error.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path

from domain.agreement import check
from eventstore.audit_settings import read_audit_settings
from eventstore.site_logs import fetch_logs, read_logs
from eventstore.store import LogEntry


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


def valid_event_id(event_id: str) -> bool:
    try:
        return str(uuid.UUID(event_id)) == event_id
    except ValueError:
        return False


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("event_id")
    parser.add_argument("--settings", help="the settings file the sites read (default: settings.toml)")
    parser.add_argument("--sites", type=int, help="how many sites (default: the settings file's)")
    parser.add_argument("--ca", help="verify https sites against this CA file (default: [tls] ca)")
    parser.add_argument("--data-dir", type=Path,
                        help="read the stopped sites' stores under this folder instead of asking them")
    args = parser.parse_args(argv)
    if not valid_event_id(args.event_id):
        parser.error(f"{args.event_id!r} is not an event id (a UUID such as "
                     f"123e4567-e89b-12d3-a456-426614174000)")
    settings = read_audit_settings(args.settings, site_count=args.sites, ca=args.ca)
    if settings.ca is not None and not Path(settings.ca).is_file():
        parser.error(f"the CA file {settings.ca} does not exist")
    if args.data_dir is not None:
        answers = read_logs(settings.database, args.data_dir, len(settings.urls), args.event_id)
    else:
        answers = fetch_logs(settings.urls, args.event_id, settings.ca)
    logs = {site: entries for site, entries in answers.items() if not isinstance(entries, str)}
    silent = {site: problem for site, problem in answers.items() if isinstance(problem, str)}
    for site, problem in sorted(silent.items()):
        print(f"site {site} ({settings.urls[site]}) {problem}")
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
    if silent:
        names = ", ".join(f"site {s}" for s in sorted(silent))
        print(f"verdict: INCOMPLETE, not every site answered ({names})")
        return 1
    print("verdict: the sites agree" if verdict.agree else "verdict: the sites DISAGREE")
    return 0 if verdict.agree else 1


if __name__ == "__main__":
    sys.exit(main())
