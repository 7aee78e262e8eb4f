"""Start-up scan of one site's SQLite store: the whole log against a checkpoint and its tail.

    python benchmarks/bench_startup_scan.py [--events 10000] [--tail 1000] [--repeat 3]

Builds a scratch store by saving aggregates directly (no HTTP, no actors): each event holds the
28 records its home site keeps for its creation and two uploads it coordinated, and one upload
coordinated elsewhere (participant: created, 4 x Prepared/Committed; coordinator: created,
3 x Began/Decided/4 acknowledgements). Then times `SiteStore(...)` + `scan()`, as a site's
start-up runs them, best of --repeat: from no checkpoint (the whole log; this start-up writes
one), from a fresh checkpoint, and from that checkpoint with --tail records stored after it.
Then times one periodic `checkpoint()`, which rewrites the whole state. The scratch folder is
removed at the end.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h  # noqa: E402
import _weather as weather  # noqa: E402

from domain.aggregates import Coordination, PhotoEvent  # noqa: E402
from domain.messages import AddPhotos, CreateEvent, PhotoMeta  # noqa: E402
from domain.records import Acknowledged, Began, Committed, Decided, Prepared, Refused  # noqa: E402
from eventstore.store import CHECKPOINT_FILE, SiteStore  # noqa: E402

SITES = (0, 1, 2, 3)
RECORDS_PER_EVENT = 28
SAVE_EVENTS = 200  # events per database transaction while building


def event_records(n: int) -> tuple[PhotoEvent, Coordination]:
    """One event's 28 records at its home site (site 0), which coordinated all but the last upload."""
    event_id = str(uuid.uuid4())
    event, coordination = PhotoEvent(event_id=event_id), Coordination(event_id=event_id)
    payloads = [CreateEvent(f"Event {n}", 0, "2026-11-26T10:00:00+00:00")]
    for version in (0, 1, 2):
        photo = PhotoMeta(uuid.uuid4().hex, f"{n:064x}", f"{n + version:064x}", f"user-{version}", 0)
        payloads.append(AddPhotos(version, (photo,)))
    for k, payload in enumerate(payloads):
        txn = f"0-{event_id[:8]}-{k}"
        coordinated_here = k < 3
        if coordinated_here:
            coordination.record(Began(txn, payload, SITES))
        event.record(Prepared(txn, 0, payload))
        if coordinated_here:
            coordination.record(Decided(txn, True, None))
        event.record(Committed(txn))
        if coordinated_here:
            coordination.record(Acknowledged(txn, SITES))
    return event, coordination


def add_events(store: SiteStore, count: int, first: int = 0) -> None:
    for start in range(first, first + count, SAVE_EVENTS):
        batch = [a for n in range(start, min(start + SAVE_EVENTS, first + count)) for a in event_records(n)]
        store.save(*batch)


def add_records(store: SiteStore, count: int, first: int) -> None:
    """Exactly `count` more records: whole events, then refusals on one more event for the rest."""
    whole, rest = divmod(count, RECORDS_PER_EVENT)
    add_events(store, whole, first)
    if rest:
        event = PhotoEvent(event_id=str(uuid.uuid4()))
        for i in range(rest - 1):
            event.record(Refused(f"1-refused-{i}", 1, "locked"))
        store.save(event)


def time_start_up(site_dir: Path, repeat: int, fresh: bool) -> tuple[float, int]:
    """Best wall time of SiteStore(...) + scan(), and the records in the log."""
    best, records = float("inf"), 0
    for _ in range(repeat):
        if fresh:
            (site_dir / CHECKPOINT_FILE).unlink(missing_ok=True)
        started = time.perf_counter()
        store = SiteStore("sqlite", site_dir)
        scan = store.scan()
        best = min(best, time.perf_counter() - started)
        records = scan.last_id
        store.close()
    return best, records


def time_periodic_checkpoint(site_dir: Path) -> float:
    """One checkpoint() after start-up read a short tail: it rewrites the whole state (once, as
    a second call would find nothing new to write)."""
    store = SiteStore("sqlite", site_dir)
    store.scan()
    started = time.perf_counter()
    store.checkpoint()
    seconds = time.perf_counter() - started
    store.close()
    return seconds


def checkpoint_bytes(site_dir: Path) -> int:
    return (site_dir / CHECKPOINT_FILE).stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--tail", type=int, default=1000, help="records stored after the checkpoint")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {weather.machine()}", flush=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench-startup-scan-"))
    site_dir = scratch / "site-0"
    try:
        started = time.perf_counter()
        store = SiteStore("sqlite", site_dir)
        add_events(store, args.events)
        store.close()
        print(f"built {args.events} events in {time.perf_counter() - started:.0f} s", flush=True)

        rows = []

        def row(label: str, read, seconds: float, records: int) -> None:
            rows.append([label, records, read, f"{seconds:.3f}", checkpoint_bytes(site_dir)])

        seconds, records = time_start_up(site_dir, args.repeat, fresh=True)
        row("whole log, no checkpoint (writes one)", records, seconds, records)
        seconds, records = time_start_up(site_dir, args.repeat, fresh=False)
        row("fresh checkpoint, empty tail", 0, seconds, records)
        store = SiteStore("sqlite", site_dir)
        add_records(store, args.tail, first=args.events)
        store.close()
        seconds, records = time_start_up(site_dir, args.repeat, fresh=False)
        row(f"checkpoint + {args.tail}-record tail", args.tail, seconds, records)
        row("then one periodic checkpoint() (once)", 0, time_periodic_checkpoint(site_dir), records)
        print()
        print(h.table(["start-up", "records", "read", "seconds", "checkpoint bytes"], rows))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
