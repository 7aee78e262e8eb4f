"""One site's event store: the eventsourcing library over embedded SQLite (or any SQLAlchemy URL).

Each save is one database transaction; on SQLite that is a WAL commit with synchronous=FULL, so a
save that returned is on disk (a "forced write" in two-phase-commit terms).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import JSONTranscoder, MapperDeserialisationError, PersistenceError

from domain.aggregates import Coordination, PhotoEvent, coordination_id, record_from_data
from domain.errors import StorageUnavailable
from eventstore.log_scan import LogScan, read_checkpoint, write_checkpoint
from eventstore.snapshots import SNAPSHOT_EVERY, register_state_transcodings

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "scan-checkpoint.json"
CHECKPOINT_AFTER = 1000  # records: a start-up that read a longer tail writes a checkpoint at once
_BATCH = 5000


@dataclass(frozen=True)
class LogEntry:
    """One stored record, as the audit shows it."""

    at: datetime
    role: str  # "participant" or "coordinator"
    type: str
    record: object  # the domain record (domain.records), or None for the log's creation
    data: dict


class _Slot:
    def __init__(self, aggregates):
        self.aggregates = aggregates
        self.done = threading.Event()
        self.error: Exception | None = None


def store_env(database: str, site_dir: Path) -> dict[str, str]:
    if database == "sqlite":
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(site_dir / "events.sqlite"),
            "SQLITE_LOCK_TIMEOUT": "30",
        }
    return {"PERSISTENCE_MODULE": "eventsourcing_sqlalchemy", "SQLALCHEMY_URL": database}


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
        self.app = _StoreApplication(env=store_env(database, site_dir))
        self._lock = threading.Lock()
        self._queue: list[_Slot] = []
        self._writing = False
        # Checkpoints only on SQLite: its single writer makes notification ids visible in
        # increasing order, so "every record up to last_id" stays true as records are added. On
        # PostgreSQL concurrent transactions commit their ids out of order: a scan could pass an
        # id whose record commits later and a checkpoint would miss it for good; there start-up
        # reads the whole log.
        self._checkpoint_path = site_dir / CHECKPOINT_FILE if database == "sqlite" else None
        self._scan_lock = threading.Lock()
        self._scan: LogScan | None = None  # the fold so far, kept by checkpoint() to fold on
        self._checkpointed_id = 0  # last_id of the checkpoint file, as far as this store knows
        self._closed = False

    def load_event(self, event_id: str) -> PhotoEvent | None:
        return self._get(UUID(event_id))

    def load_coordination(self, event_id: str) -> Coordination | None:
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
            self._write_batches()
        slot.done.wait()
        if slot.error is not None:
            raise slot.error

    def _write_batches(self) -> None:
        while True:
            with self._lock:
                batch, self._queue = self._queue, []
                if not batch:
                    self._writing = False
                    return
            error = None
            aggregates = [a for slot in batch for a in slot.aggregates]
            stored_before = [a.version - len(a.pending_events) for a in aggregates]
            try:
                self.app.save(*aggregates)
            except PersistenceError as e:
                # The whole batch failed: every actor in it reloads what is stored, so none of
                # them believes in a record that is not on disk.
                error = StorageUnavailable(f"This site could not store the change: {e}")
            except Exception as e:  # never leave the others of the batch waiting
                error = e
            # Taken while the actors wait, as their aggregates must not change meanwhile.
            due = [] if error else [a for a, before in zip(aggregates, stored_before)
                                    if a.version // SNAPSHOT_EVERY > before // SNAPSHOT_EVERY]
            snapshots = [Snapshot.take(a) for a in due]
            for slot in batch:
                slot.error = error
                slot.done.set()
            if snapshots:
                self._put_snapshots(snapshots)

    def _put_snapshots(self, snapshots) -> None:
        """Store snapshots; one that fails costs only a longer replay later."""
        try:
            self.app.snapshots.put(snapshots)
        except Exception as e:
            log.warning("could not store %d snapshots: %r", len(snapshots), e)

    def logged_events(self) -> tuple[set[str], set[str]]:
        """Event ids with a participant log here, and with a coordinator log here."""
        scan = self.scan()
        return scan.logged, scan.coordinated

    def scan(self) -> LogScan:
        """What start-up needs, read without rebuilding any aggregate or starting any actor:
        which events exist and which roles have unfinished work. Folds only the records stored
        since the checkpoint when there is a sound one, and checkpoints a long tail at once."""
        if self._checkpoint_path is None:
            scan = LogScan()
            self._fold_tail(scan)
            return scan
        with self._scan_lock:
            if self._catch_up() > CHECKPOINT_AFTER:
                self._write_checkpoint()
            scan, self._scan = self._scan, None  # the caller's: checkpoint() starts from the file
            return scan

    def checkpoint(self) -> None:
        """Fold the records stored since and rewrite the checkpoint file, so the next start reads
        only what comes after. Safe from any thread while saves go on: it only reads committed
        records. Does nothing where there are no checkpoints (not SQLite) or after close()."""
        if self._checkpoint_path is None:
            return
        with self._scan_lock:
            if self._closed:
                return
            self._catch_up()
            if self._scan.last_id > self._checkpointed_id:
                self._write_checkpoint()

    def _catch_up(self) -> int:
        """Bring the kept scan up to the end of the log; returns how many records that read."""
        if self._scan is None:
            self._scan = self._load_checkpoint() or LogScan()
            self._checkpointed_id = self._scan.last_id
        return self._fold_tail(self._scan)

    def _fold_tail(self, scan: LogScan) -> int:
        read = 0
        while True:
            batch = self.app.recorder.select_notifications(scan.last_id + 1, _BATCH)
            scan.fold(batch)
            read += len(batch)
            if len(batch) < _BATCH:
                return read

    def _load_checkpoint(self) -> LogScan | None:
        """The checkpointed scan, if its file is sound and was folded from this very log."""
        loaded = read_checkpoint(self._checkpoint_path)
        if loaded is None:
            return None
        scan, database = loaded
        if database != self._identity(scan.last_id):
            log.warning("the scan checkpoint %s was made from another log: reading the whole log",
                        self._checkpoint_path)
            return None
        return scan

    def _identity(self, last_id: int) -> dict:
        """The log as a checkpoint names it: its first record and its record at last_id. Another
        database has another first record; an older copy or a shorter log has no such last."""
        first = self.app.recorder.select_notifications(1, 1)
        last = self.app.recorder.select_notifications(last_id, 1, stop=last_id)
        return {"first": _record_key(first), "last": _record_key(last)}

    def _write_checkpoint(self) -> None:
        try:
            write_checkpoint(self._checkpoint_path, self._scan, self._identity(self._scan.last_id))
        except OSError as e:  # e.g. a full disk: the site runs on, the next start reads more
            log.warning("could not write the scan checkpoint %s: %s", self._checkpoint_path, e)
            return
        self._checkpointed_id = self._scan.last_id

    def log(self, event_id: str) -> list[LogEntry]:
        """Every record this site stored for the event, both roles, oldest first."""
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
        entries.sort(key=lambda e: e.at)
        return entries

    def pragma(self, name: str):
        """A PRAGMA as the live store's own connections see it (SQLite only)."""
        with self.app.recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(f"PRAGMA {name}")
            return cursor.fetchone()[0]

    def close(self) -> None:
        with self._scan_lock:  # a checkpoint being written finishes first; none starts after
            self._closed = True
        self.app.close()
        engine = getattr(self.app.recorder.datastore, "engine", None)  # SQLAlchemy stores
        if engine is not None and hasattr(engine, "dispose"):
            engine.dispose()


def _record_key(notifications) -> list | None:
    """A record's id and primary key (aggregate, version), or None for no record."""
    if not notifications:
        return None
    n = notifications[0]
    return [n.id, str(n.originator_id), n.originator_version]
