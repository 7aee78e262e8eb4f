"""One site's event store: the eventsourcing library over embedded SQLite (or any SQLAlchemy URL).

Saves are grouped: those that arrive together (`save`), or that actors queued since the last
flush (`save_later`, `flush`), go in one database transaction; on SQLite that is a WAL commit
with synchronous=FULL (set on every connection and checked at start, see eventstore.durable), so
a save reported done is on disk (a "forced write" in two-phase-commit terms). Every call into
the store passes its guard: storage trouble leaves here as StorageUnavailable, in words, and
shows in `health`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import JSONTranscoder, MapperDeserialisationError

from domain.aggregates import Coordination, PhotoEvent, RecordEvent, coordination_id, record_from_data
from domain.errors import StorageUnavailable
from eventstore.durable import check_durable, sqlite_pragma, store_env
from eventstore.log_scan import KeptScan, LogScan
from eventstore.snapshots import SNAPSHOT_EVERY, register_state_transcodings
from eventstore.stored_records import StoredRecords
from eventstore.store_trouble import StoreGuard, StoreHealth

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "scan-checkpoint.json"
PROBE_FILE = ".write-probe"


@dataclass(frozen=True)
class LogEntry:
    """One stored record, as the audit shows it."""

    at: datetime
    role: str  # "participant" or "coordinator"
    type: str
    record: object  # the domain record (domain.records), or None for the log's creation
    data: dict


class _Slot:
    """One save waiting for its batch: a lock held until the batch is written (cheaper than a
    threading.Event, which builds a Condition per save)."""

    __slots__ = ("aggregates", "error", "_latch")

    def __init__(self, aggregates):
        self.aggregates = aggregates
        self.error: Exception | None = None
        self._latch = threading.Lock()
        self._latch.acquire()

    def done(self) -> None:
        self._latch.release()

    def wait(self) -> None:
        self._latch.acquire()


class _StoreApplication(Application):
    """The library's application with snapshots of our aggregates (taken by SiteStore)."""

    name = "Application"  # the environment and tables are those of a plain Application
    is_snapshotting_enabled = True
    snapshot_class = Snapshot

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_state_transcodings(transcoder)


class SiteStore:
    def __init__(self, database: str, site_dir: Path):
        site_dir.mkdir(parents=True, exist_ok=True)
        self.site_dir = site_dir
        self.health = StoreHealth()
        self._guard = StoreGuard(self.health)
        self.app = _StoreApplication(env=store_env(database, site_dir))
        self._encoder = StoredRecords(self.app.mapper)
        self._lock = threading.Lock()
        self._queue: list[_Slot] = []
        self._later: list[tuple] = []  # (aggregate, done) queued by save_later for flush
        self._writing = False
        self._insert_lock = threading.Lock()
        self._commits = 0  # database transactions of new records written (forced writes)
        self._records = 0  # records they held
        # Checkpoints only on SQLite: its single writer makes notification ids visible in
        # increasing order, so "every record up to last_id" stays true as records are added. On
        # PostgreSQL concurrent transactions commit their ids out of order: a scan could pass an
        # id whose record commits later and a checkpoint would miss it for good; there start-up
        # reads the whole log.
        checkpoint = site_dir / CHECKPOINT_FILE if database == "sqlite" else None
        self._scans = KeptScan(self.app.recorder, checkpoint)

    def check_durable(self) -> None:
        """Raise StorageNotDurable unless a committed save is a forced write (start-up)."""
        with self._guard("check its storage settings"):
            check_durable(self.app.recorder.datastore)

    def load_event(self, event_id: str) -> PhotoEvent | None:
        with self._guard("read the event"):
            return self._get(UUID(event_id))

    def load_coordination(self, event_id: str) -> Coordination | None:
        with self._guard("read the event"):
            return self._get(coordination_id(event_id))

    def _get(self, aggregate_id: UUID):
        try:
            return self.app.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        except MapperDeserialisationError as e:  # a snapshot this code cannot read
            log.warning("snapshot of %s not readable (%s): replaying its whole log", aggregate_id, e)
            return self._replay(aggregate_id)

    def _replay(self, aggregate_id: UUID):
        aggregate = None
        for event in self.app.events.get(aggregate_id):
            aggregate = event.mutate(aggregate)
        return aggregate

    def save(self, *aggregates) -> None:
        """Durably store the aggregates' new records. Group commit: saves that arrive while
        one is being written wait and go together in the next database transaction (one
        fsync for many), so concurrent transactions do not queue behind each other's syncs."""
        slot = _Slot(aggregates)
        with self._lock:
            self._queue.append(slot)
            leader = not self._writing
            self._writing = True
        if leader:
            self._write_batches()  # its own slot is in the first batch: done when this returns
        slot.wait()
        if slot.error is not None:
            raise slot.error

    def save_later(self, aggregate, done: Callable[[Exception | None], None]) -> None:
        """Queue the aggregate's new records for the next `flush`, which calls `done` with None
        once they are durable, or with the error if they are not (nothing of them stored).
        The aggregate must not change until then. What actors save (actors.pool flushes)."""
        with self._lock:
            self._later.append((aggregate, done))

    def flush(self) -> bool:
        """Store what was queued by `save_later` in one database transaction (one forced write),
        then call each `done`; whether there was anything to store."""
        with self._lock:
            batch, self._later = self._later, []
        if not batch:
            return False
        error, snapshots = self._write([aggregate for aggregate, _ in batch])
        for _, done in batch:
            done(error)
        self._put_snapshots(snapshots)
        return True

    def _write_batches(self) -> None:
        while True:
            with self._lock:
                batch, self._queue = self._queue, []
                if not batch:
                    self._writing = False
                    return
            error, snapshots = self._write([a for slot in batch for a in slot.aggregates])
            for slot in batch:
                slot.error = error
                slot.done()
            self._put_snapshots(snapshots)

    def _write(self, aggregates) -> tuple[Exception | None, list]:
        """The aggregates' new records in one database transaction: the error if it failed,
        and the snapshots now due (to store once the savers are told). The whole batch fails
        together: each actor in it reloads what is stored, so none of them believes in a
        record that is not on disk."""
        stored_before = [a.version - len(a.pending_events) for a in aggregates]
        try:
            records = self.write(aggregates)
        except Exception as e:  # never leave the others of the batch waiting
            return e, []
        with self._lock:
            self._commits += 1
            self._records += records
        # Taken before anyone is told, as the aggregates must not change meanwhile.
        return None, [Snapshot.take(a) for a, before in zip(aggregates, stored_before)
                      if a.version // SNAPSHOT_EVERY > before // SNAPSHOT_EVERY]

    def write(self, aggregates) -> int:
        """One database transaction with the aggregates' new records (raises if it failed); how
        many records it held."""
        with self._guard("store the change", writes=True):
            return self._insert(aggregates)

    def written(self) -> tuple[int, int]:
        """Database transactions of new records this store wrote since it opened, and the
        records they held (operators' figures: records per forced write is group commit at work)."""
        with self._lock:
            return self._commits, self._records

    def _insert(self, aggregates) -> int:
        """The aggregates' pending events in one database transaction: what `Application.save`
        does here (no aggregate cache, no automatic snapshots, nothing notified), without its
        per-save bookkeeping (runtime Protocol checks, recordings), ~1/4 of a save's CPU, and
        with records encoded directly (eventstore.stored_records: the same bytes)."""
        keyed = []  # (its aggregate's id as text, event): the text made once per aggregate
        for aggregate in aggregates:
            key = str(aggregate.id)
            keyed += [(key, event) for event in aggregate.collect_events()]
        stored = [self._encoder.stored(event) for _, event in keyed]
        scanned = [_scanned(key, event, record) for (key, event), record in zip(keyed, stored)] \
            if self._scans.path else []
        with self._insert_lock:  # so the start-up scan's fold takes batches in commit order
            ids = self.app.recorder.insert_events(stored)
            self._scans.took(ids, scanned)
        return len(stored)

    def _put_snapshots(self, snapshots) -> None:
        """Store snapshots; one that fails costs only a longer replay later."""
        if not snapshots:
            return
        try:
            self.app.snapshots.put(snapshots)
        except Exception as e:
            log.warning("could not store %d snapshots: %r", len(snapshots), e)

    def logged_events(self) -> tuple[set[str], set[str]]:
        """Event ids with a participant log here, and with a coordinator log here."""
        with self._guard("read its log"):
            return self._scans.logged_events()

    def scan(self) -> LogScan:
        """What start-up needs, read without rebuilding any aggregate or starting any actor:
        which events exist and which roles have unfinished work (from the checkpoint on)."""
        with self._guard("read its log"):
            return self._scans.scan()

    def checkpoint(self) -> None:
        """Checkpoint the start-up scan; safe from any thread while saves go on."""
        with self._guard("read its log"):
            self._scans.checkpoint()

    def log(self, event_id: str) -> list[LogEntry]:
        """Every record this site stored for the event, both roles, oldest first."""
        with self._guard("read its log"):
            return self._log(event_id)

    def _log(self, event_id: str) -> list[LogEntry]:
        entries = []
        for role, aggregate_id in (
            ("participant", UUID(event_id)),
            ("coordinator", coordination_id(event_id)),
        ):
            for stored in self.app.recorder.select_events(aggregate_id):
                event = self.app.mapper.to_domain_event(stored)
                name = type(event).__name__
                data = getattr(event, "data", None)
                record = record_from_data(name, data) if data is not None else None
                entries.append(LogEntry(event.timestamp, role, name, record, data or {}))
                first = getattr(event, "first", None)
                if first:  # the log's first record, carried by its creation (its wire form)
                    first_data = {k: v for k, v in first.items() if k != "type"}
                    entries.append(LogEntry(event.timestamp, role, first["type"],
                                            record_from_data(first["type"], first_data), first_data))
        entries.sort(key=lambda e: e.at)
        return entries

    def pragma(self, name: str):
        """A PRAGMA as the live store's own connections see it (SQLite only)."""
        return sqlite_pragma(self.app.recorder.datastore, name)

    def probe(self, folders=()) -> bool:
        """Whether the store can take writes now, cheaply: its database answers, and (as an
        embedded database's disk fills up or turns read-only under it) its folder, and any
        other `folders` the site writes to, take a forced write. Updates `health` either way."""
        try:
            with self._guard("take writes", writes=True):
                self.app.recorder.max_notification_id()
                for folder in (self.site_dir, *folders):
                    _write_probe_file(folder)
        except StorageUnavailable:
            return False
        return True

    def close(self) -> None:
        self._scans.close()
        self.app.close()
        engine = getattr(self.app.recorder.datastore, "engine", None)  # SQLAlchemy stores
        if engine is not None and hasattr(engine, "dispose"):
            engine.dispose()


def _scanned(key: str, event, stored) -> tuple:
    """A record as the start-up scan takes it (LogScan.take), under its aggregate's id as text
    (`key`, made once per aggregate, not per record): a record event's data as it is, an
    aggregate's creation by its event id, anything else parsed from its stored form."""
    kind, _, name = type(event).__qualname__.partition(".")
    if isinstance(event, RecordEvent):
        return key, kind, name, event.data
    if name == "Created" and isinstance(getattr(event, "event_id", None), str):
        return key, kind, name, {"event_id": event.event_id, "first": getattr(event, "first", None)}
    return key, kind, name, json.loads(stored.state)


def _write_probe_file(folder: Path) -> None:
    path = folder / PROBE_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, b"\0" * 4096)
        os.fsync(fd)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
