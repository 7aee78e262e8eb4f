"""The floor benchmark's logs (benchmarks/floor_site.py): a site's forced writes, each resolved
on the loop once durable, by one writer thread (group commit: what queued meanwhile goes in
one transaction) or at once in the caller's thread; kept in stdlib sqlite3 (`Log`), or by the
eventsourcing library: its aggregates and `Application.save` (`EventSourcedLog`), or its
recorder (`RecorderLog`)."""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
import uuid
from pathlib import Path

import msgspec
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import StoredEvent

_ENCODE = msgspec.json.Encoder().encode


class Log:
    """One SQLite file, every write forced (committed with synchronous=FULL) before its future resolves."""

    def __init__(self, path: Path, threaded: bool):
        self._open(path)
        self.lock = threading.Lock()  # writes from actors' threads (write_now)
        self.loop = asyncio.get_running_loop()
        self.commits = 0
        self.queue: queue.SimpleQueue | None = queue.SimpleQueue() if threaded else None
        if threaded:
            self.thread = threading.Thread(target=self._writer, name="log-writer", daemon=True)
            self.thread.start()

    @property
    def grouped(self) -> bool:
        """Whether writes go through the writer thread (group commit)."""
        return self.queue is not None

    def write(self, txn: str, kind: str, body: str = "") -> asyncio.Future:
        done = self.loop.create_future()
        if self.grouped:
            self.write_later(txn, kind, body, done)
        else:
            self._commit([(txn, kind, body.encode())])
            done.set_result(None)
        return done

    def write_later(self, txn: str, kind: str, body: str, done: asyncio.Future) -> None:
        """Queued for the writer thread (from any thread), which settles `done` on the loop once stored."""
        self.queue.put((txn, kind, body.encode(), done))

    def write_now(self, txn: str, kind: str, body: str = "") -> None:
        """Stored when this returns (in the caller's thread: an actor's)."""
        with self.lock:
            self._commit([(txn, kind, body.encode())])

    def _open(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE IF NOT EXISTS log (txn TEXT, kind TEXT, body BLOB, PRIMARY KEY (txn, kind))")

    def _commit(self, rows: list) -> None:
        self.db.execute("BEGIN")
        self.db.executemany("INSERT INTO log (txn, kind, body) VALUES (?, ?, ?)", rows)
        self.db.execute("COMMIT")
        self.commits += 1

    def _writer(self) -> None:  # group commit: everything queued goes in one transaction
        while (first := self.queue.get()) is not None:
            batch = [first]
            while True:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            stop = batch[-1] is None  # close() puts None last
            batch = batch[:-1] if stop else batch
            self._commit([w[:3] for w in batch])
            self.loop.call_soon_threadsafe(_resolve, [w[3] for w in batch])
            if stop:
                return

    def close(self) -> None:
        if self.queue is not None:
            self.queue.put(None)
            self.thread.join()
        self._close()

    def _close(self) -> None:
        self.db.close()


class TxnLog(Aggregate):
    """A transaction's writes at one site, as an event-sourced aggregate."""

    @event("Opened")
    def __init__(self, txn: str, kind: str, body: str):
        self.txn, self.kinds = txn, [kind]

    @event("Written")
    def write(self, kind: str, body: str) -> None:
        self.kinds.append(kind)


class LibraryLog(Log):
    """A log kept by the eventsourcing library (its SQLite module: WAL; synchronous=FULL is this
    libsqlite3 build's default, as our store checks at start)."""

    def _open(self, path: Path) -> None:
        self.app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)})

    def _close(self) -> None:
        self.app.close()


class EventSourcedLog(LibraryLog):
    """The same writes through the library's aggregates: one per transaction at this site, one
    event per write, the batch saved by `Application.save` (one database transaction)."""

    def _open(self, path: Path) -> None:
        super()._open(path)
        self.logs: dict[str, TxnLog] = {}  # changed by one thread at a time: the writer, or under the lock

    def _commit(self, rows: list) -> None:
        changed = {}
        for txn, kind, body in rows:
            log = self.logs.get(txn)
            if log is None:
                log = self.logs[txn] = TxnLog(txn, kind, body.decode())
            else:
                log.write(kind, body.decode())
            changed[id(log)] = log
        self.app.save(*changed.values())
        self.commits += 1


class RecorderLog(LibraryLog):
    """The same writes through the library's recorder (its lower public API, which our store
    uses): a stored event per write, built directly (JSON of txn, kind and body), one
    `insert_events` per batch (one database transaction)."""

    def _open(self, path: Path) -> None:
        super()._open(path)
        self.versions: dict[str, list] = {}  # txn -> [its aggregate id, its next version]

    def _commit(self, rows: list) -> None:
        stored = []
        for txn, kind, body in rows:
            at = self.versions.get(txn)
            if at is None:
                at = self.versions[txn] = [uuid.uuid4(), 1]
            stored.append(StoredEvent(originator_id=at[0], originator_version=at[1], topic="floor_site:Written",
                                      state=_ENCODE({"txn": txn, "kind": kind, "body": body.decode()})))
            at[1] += 1
        self.app.recorder.insert_events(stored)
        self.commits += 1


def _resolve(futures: list) -> None:
    for f in futures:
        if not f.done():
            f.set_result(None)
