"""One site's event store: the eventsourcing library over embedded SQLite (or any SQLAlchemy URL).

Each save is one database transaction; on SQLite that is a WAL commit with synchronous=FULL, so a
save that returned is on disk (a "forced write" in two-phase-commit terms).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import PersistenceError

from domain.aggregates import Coordination, PhotoEvent, coordination_id, record_from_data
from domain.errors import StorageUnavailable

CREATED_TOPICS = (
    "domain.aggregates:PhotoEvent.Created",
    "domain.aggregates:Coordination.Created",
)


@dataclass(frozen=True)
class LogEntry:
    """One stored record, as the audit shows it."""

    at: datetime
    role: str  # "participant" or "coordinator"
    type: str
    record: object  # the domain record (domain.records), or None for the log's creation
    data: dict


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
        try:
            self.app.save(*aggregates)
        except PersistenceError as e:
            raise StorageUnavailable(f"This site could not store the change: {e}") from e

    def logged_events(self) -> tuple[set[str], set[str]]:
        """Event ids with a participant log here, and with a coordinator log here."""
        participant, coordinator = set(), set()
        start = 1
        while True:
            batch = self.app.recorder.select_notifications(start, 1000, topics=CREATED_TOPICS)
            for n in batch:
                event_id = self.app.mapper.to_domain_event(n).event_id
                (participant if n.topic.endswith("PhotoEvent.Created") else coordinator).add(event_id)
            if len(batch) < 1000:
                return participant, coordinator
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
