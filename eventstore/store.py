"""One site's event store: the eventsourcing library over embedded SQLite (or any SQLAlchemy URL).

Each save is one database transaction; on SQLite that is a WAL commit with synchronous=FULL, so a
save that returned is on disk (a "forced write" in two-phase-commit terms).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import PersistenceError

from domain.aggregates import Coordination, PhotoEvent, coordination_id, record_from_data
from domain.errors import StorageUnavailable



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


class LogScan:
    """What a scan of the log found: per event, whether it exists here and what is unfinished."""

    def __init__(self):
        self.logged: set[str] = set()  # events with a participant log
        self.coordinated: set[str] = set()  # events with a coordinator log
        self.existing: set[str] = set()  # events whose creation committed here
        self._events: dict[str, str] = {}  # aggregate id -> event id
        self._prepared: dict[str, tuple[str, str]] = {}  # event -> (txn, payload type) in doubt
        self._open_txns: dict[str, dict[str, set]] = {}  # event -> txn -> sites yet to ack
        self._rounds: dict[str, dict[str, str]] = {}  # event -> txn -> payload type, decided commit
        self._round_open: dict[str, bool] = {}

    def add(self, aggregate_id, topic: str, state: bytes) -> None:
        kind, _, name = topic.rpartition(":")[2].partition(".")
        key = str(aggregate_id)
        if name == "Created":
            event_id = json.loads(state)["event_id"]
            self._events[key] = event_id
            (self.logged if kind == "PhotoEvent" else self.coordinated).add(event_id)
            return
        event_id = self._events[key]
        data = json.loads(state)["data"]
        txn = data.get("txn_id")
        if kind == "PhotoEvent":
            if name == "Prepared":
                self._prepared[event_id] = (txn, data["payload"]["type"])
            elif name in ("Committed", "Aborted") and self._prepared.get(event_id, ("",))[0] == txn:
                _, payload_type = self._prepared.pop(event_id)
                if name == "Committed" and payload_type == "CreateEvent":
                    self.existing.add(event_id)
            return
        txns = self._open_txns.setdefault(event_id, {})
        if name == "Began":
            txns[txn] = {"sites": set(data["sites"]), "type": data["payload"]["type"], "decided": False}
        elif name == "Decided" and txn in txns:
            txns[txn]["decided"] = True
            if data["commit"] and txns[txn]["type"] == "StartRound":
                self._round_open[event_id] = True
            if txns[txn]["type"] == "Publish":
                self._round_open[event_id] = False
        elif name == "Acknowledged" and txn in txns:
            txns[txn]["sites"].discard(data["site"])
            if not txns[txn]["sites"] and txns[txn]["decided"]:
                del txns[txn]

    @property
    def participants_in_doubt(self) -> set[str]:
        return set(self._prepared)

    @property
    def coordinators_with_work(self) -> set[str]:
        """Undecided or unacknowledged transactions, or a round waiting for its deadline."""
        busy = {e for e, txns in self._open_txns.items() if txns}
        return busy | {e for e, is_open in self._round_open.items() if is_open}


def store_env(database: str, site_dir: Path) -> dict[str, str]:
    if database == "sqlite":
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(site_dir / "events.sqlite"),
            "SQLITE_LOCK_TIMEOUT": "30",
        }
    return {"PERSISTENCE_MODULE": "eventsourcing_sqlalchemy", "SQLALCHEMY_URL": database}


class SiteStore:
    def __init__(self, database: str, site_dir: Path):
        site_dir.mkdir(parents=True, exist_ok=True)
        self.app = Application(env=store_env(database, site_dir))
        self._lock = threading.Lock()
        self._queue: list[_Slot] = []
        self._writing = False

    def load_event(self, event_id: str) -> PhotoEvent | None:
        return self._get(UUID(event_id))

    def load_coordination(self, event_id: str) -> Coordination | None:
        return self._get(coordination_id(event_id))

    def _get(self, aggregate_id: UUID):
        try:
            return self.app.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

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
            try:
                self.app.save(*(a for slot in batch for a in slot.aggregates))
            except PersistenceError as e:
                # The whole batch failed: every actor in it reloads what is stored, so none of
                # them believes in a record that is not on disk.
                error = StorageUnavailable(f"This site could not store the change: {e}")
            except Exception as e:  # never leave the others of the batch waiting
                error = e
            for slot in batch:
                slot.error = error
                slot.done.set()

    def logged_events(self) -> tuple[set[str], set[str]]:
        """Event ids with a participant log here, and with a coordinator log here."""
        scan = self.scan()
        return scan.logged, scan.coordinated

    def scan(self) -> "LogScan":
        """One pass over the whole log, reading only what start-up needs: which events exist and
        which roles have unfinished work (no aggregate is rebuilt, no actor started)."""
        scan = LogScan()
        start = 1
        while True:
            batch = self.app.recorder.select_notifications(start, 5000)
            for n in batch:
                scan.add(n.originator_id, n.topic, n.state)
            if len(batch) < 5000:
                return scan
            start = batch[-1].id + 1

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
        self.app.close()
        engine = getattr(self.app.recorder.datastore, "engine", None)  # SQLAlchemy stores
        if engine is not None and hasattr(engine, "dispose"):
            engine.dispose()
