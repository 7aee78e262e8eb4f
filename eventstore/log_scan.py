"""What start-up needs from a site's log, folded record by record, and the file that keeps it.

Reading every record costs ~15 us each (5 s at 280,000 records), so the fold is checkpointed to
a file with the id of the last record it took in; a restart folds only the records stored since.
The file is an optimisation: whatever is wrong with it, the caller reads the whole log instead.
While a site runs, the fold is kept in memory and fed by the writers with what they just
committed (`KeptScan.took`), so a checkpoint reads back from the log only what they missed.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from domain.records import acknowledging_sites
from eventstore.photo_files import write_atomically

log = logging.getLogger(__name__)

FORMAT = 3  # bump whenever add() or to_json() change: a file folded by other code is then ignored
CHECKPOINT_AFTER = 1000  # records: a start-up that read a longer tail writes a checkpoint at once
_BATCH = 5000
FOLD_TAKEN_AT = 64  # batches a writer leaves for the next one before folding them itself


class LogScan:
    """What a scan of the log found: per event, whether it exists here and what is unfinished."""

    def __init__(self):
        self.last_id = 0  # the highest notification id folded in
        self.logged: set[str] = set()  # events with a participant log
        self.coordinated: set[str] = set()  # events with a coordinator log
        self.existing: set[str] = set()  # events whose creation committed here
        self._events: dict[str, str] = {}  # aggregate id -> event id
        self._prepared: dict[str, tuple[str, str]] = {}  # event -> (txn, payload type) in doubt
        self._open_txns: dict[str, dict[str, dict]] = {}  # event -> txn -> sites yet to ack, type, decided
        self._round_open: dict[str, bool] = {}

    def fold(self, notifications) -> None:
        """Take in notifications in id order (each one newer than last_id)."""
        for n in notifications:
            self.add(n.originator_id, n.topic, n.state)
            self.last_id = n.id

    def add(self, aggregate_id, topic: str, state: bytes) -> None:
        """One stored record, as the log holds it."""
        kind, _, name = topic.rpartition(":")[2].partition(".")
        stored = json.loads(state)
        self.take(str(aggregate_id), kind, name, stored if name == "Created" else stored["data"])

    def take(self, key: str, kind: str, name: str, data: dict) -> None:
        """One record by its aggregate (str of its id), kind (PhotoEvent, Coordination), name
        (Created, Prepared, ...) and data (a record's fields; a creation's attributes, with the
        log's first record in wire form under "first" since 2026-12)."""
        if name == "Created":
            event_id = data["event_id"]
            self._events[key] = event_id
            (self.logged if kind == "PhotoEvent" else self.coordinated).add(event_id)
            first = data.get("first")
            if first:  # the log's first record, carried by its creation (domain.aggregates)
                record = dict(first)
                self.take(key, kind, record.pop("type"), record)
            return
        event_id = self._events[key]
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
            if txns[txn]["type"] == "Publish" and (data["commit"] or data.get("reason") != "retry"):
                self._round_open[event_id] = False  # a retried attempt leaves its round open
        elif name == "Acknowledged" and txn in txns:
            txns[txn]["sites"].difference_update(acknowledging_sites(data))
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

    def to_json(self) -> dict:
        """All of the fold's state as plain JSON values (sets become sorted lists)."""
        return {
            "last_id": self.last_id,
            "logged": sorted(self.logged),
            "coordinated": sorted(self.coordinated),
            "existing": sorted(self.existing),
            "events": dict(self._events),
            "prepared": {e: list(p) for e, p in self._prepared.items()},
            "open_txns": {
                e: {t: {**txn, "sites": sorted(txn["sites"])} for t, txn in txns.items()}
                for e, txns in self._open_txns.items()
            },
            "round_open": dict(self._round_open),
        }

    @classmethod
    def from_json(cls, data: dict) -> LogScan:
        scan = cls()
        scan.last_id = int(data["last_id"])
        scan.logged = set(data["logged"])
        scan.coordinated = set(data["coordinated"])
        scan.existing = set(data["existing"])
        scan._events = dict(data["events"])
        scan._prepared = {e: (txn, kind) for e, (txn, kind) in data["prepared"].items()}
        scan._open_txns = {
            e: {t: {**txn, "sites": set(txn["sites"])} for t, txn in txns.items()}
            for e, txns in data["open_txns"].items()
        }
        scan._round_open = dict(data["round_open"])
        return scan


class KeptScan:
    """The fold of one log (an eventsourcing recorder), kept up to date and checkpointed to a
    file; without a file (path None) every scan reads the whole log."""

    def __init__(self, recorder, path: Path | None):
        self.recorder = recorder
        self.path = path
        self._lock = threading.Lock()
        self._scan: LogScan | None = None  # the fold so far, kept by checkpoint() to fold on
        self._checkpointed_id = 0  # last_id of the checkpoint file, as far as we know
        self._closed = False
        # Batches the writers took, in commit order, not folded yet: (notification ids, records)
        self._taken: collections.deque[tuple[Sequence[int], list[tuple]]] = collections.deque()

    def took(self, ids: Sequence[int] | None, records: list[tuple]) -> None:
        """Records just committed, with their notification ids (in commit order: the store
        calls this under its write lock), each as `LogScan.take`'s arguments. They are folded
        from what the writer holds rather than read back and parsed at the next checkpoint
        (~15 us a record, 19 records a create over four sites). The writer folds them itself
        once enough wait and nobody holds the fold; it never waits for a checkpoint."""
        if self.path is None or not ids or self._closed:
            return
        self._taken.append((ids, records))
        if len(self._taken) >= FOLD_TAKEN_AT and self._lock.acquire(blocking=False):
            try:
                self._fold_taken()
            finally:
                self._lock.release()

    def _fold_taken(self) -> None:
        """Under the lock: fold the batches taken, skipping what the kept scan read from the log
        already and reading from the log what it misses (none taken while no scan was kept)."""
        while self._taken:
            ids, records = self._taken.popleft()
            scan = self._scan
            if scan is None or ids[-1] <= scan.last_id:
                continue  # _catch_up reads them from the log, or did
            if ids[0] > scan.last_id + 1:
                self._fold_tail(scan, stop=ids[0] - 1)
            for notification_id, record in zip(ids, records):
                if notification_id > scan.last_id:
                    scan.take(*record)
                    scan.last_id = notification_id

    def scan(self) -> LogScan:
        """The fold of the whole log: from the checkpoint when there is a sound one, and a long
        tail is checkpointed at once."""
        if self.path is None:
            scan = LogScan()
            self._fold_tail(scan)
            return scan
        with self._lock:
            if self._catch_up() > CHECKPOINT_AFTER:
                self._write()
            scan, self._scan = self._scan, None  # the caller's: checkpoint() starts from the file
            return scan

    def logged_events(self) -> tuple[set[str], set[str]]:
        """Events with a participant log, and with a coordinator log (copies; the kept fold
        stays kept, unlike `scan`'s)."""
        if self.path is None:
            scan = self.scan()
            return scan.logged, scan.coordinated
        with self._lock:
            self._catch_up()
            return set(self._scan.logged), set(self._scan.coordinated)

    def checkpoint(self) -> None:
        """Fold the records stored since and rewrite the file, so the next start reads only what
        comes after. Safe from any thread while records are added: it only reads committed ones.
        Does nothing without a file or after close()."""
        if self.path is None:
            return
        with self._lock:
            if self._closed:
                return
            self._catch_up()
            if self._scan.last_id > self._checkpointed_id:
                self._write()

    def close(self) -> None:
        with self._lock:  # a checkpoint being written finishes first; none starts after
            self._closed = True

    def _catch_up(self) -> int:
        """Bring the kept scan up to the end of the log; returns how many records that read."""
        if self._scan is None:
            self._scan = self._load() or LogScan()
            self._checkpointed_id = self._scan.last_id
        self._fold_taken()  # first: the log is read only beyond what the writers took
        return self._fold_tail(self._scan)

    def _fold_tail(self, scan: LogScan, stop: int | None = None) -> int:
        """Fold the records after scan.last_id (up to `stop`) read from the log; how many."""
        read = 0
        while True:
            batch = self.recorder.select_notifications(scan.last_id + 1, _BATCH, stop=stop)
            scan.fold(batch)
            read += len(batch)
            if len(batch) < _BATCH:
                return read

    def _load(self) -> LogScan | None:
        """The checkpointed scan, if its file is sound and was folded from this very log."""
        loaded = read_checkpoint(self.path)
        if loaded is None:
            return None
        scan, database = loaded
        if database != self._identity(scan.last_id):
            log.warning("the scan checkpoint %s was made from another log: reading the whole log",
                        self.path)
            return None
        return scan

    def _identity(self, last_id: int) -> dict:
        """The log as a checkpoint names it: its first record and its record at last_id. Another
        database has another first record; an older copy or a shorter log has no such last."""
        first = self.recorder.select_notifications(1, 1)
        last = self.recorder.select_notifications(last_id, 1, stop=last_id)
        return {"first": _record_key(first), "last": _record_key(last)}

    def _write(self) -> None:
        try:
            write_checkpoint(self.path, self._scan, self._identity(self._scan.last_id))
        except OSError as e:  # e.g. a full disk: the site runs on, the next start reads more
            log.warning("could not write the scan checkpoint %s: %s", self.path, e)
            return
        self._checkpointed_id = self._scan.last_id


def _record_key(notifications) -> list | None:
    """A record's id and primary key (aggregate, version), or None for no record."""
    if not notifications:
        return None
    n = notifications[0]
    return [n.id, str(n.originator_id), n.originator_version]


def write_checkpoint(path: Path, scan: LogScan, database: dict) -> None:
    """Durably replace the file: readers find the old checkpoint or the whole new one.

    `database` identifies the log the scan was folded from. The content travels as one JSON
    string beside its sha256, so a reader can refuse a file damaged or edited since it was
    written, hashing the very bytes that were written."""
    body = json.dumps({"format": FORMAT, "database": database, "scan": scan.to_json()}, separators=(",", ":"))
    text = json.dumps({"sha256": _digest(body), "body": body})
    write_atomically(path, text.encode(), durable=True)


def read_checkpoint(path: Path) -> tuple[LogScan, dict] | None:
    """The checkpointed scan and the identity of its log, or None (with a warning) when the
    file is missing, unreadable, damaged or of another format."""
    try:
        stored = json.loads(path.read_bytes())
        if stored["sha256"] != _digest(stored["body"]):
            raise ValueError("checksum mismatch")
        content = json.loads(stored["body"])
        if content["format"] != FORMAT:
            raise ValueError(f"format {content['format']!r}, not {FORMAT}")
        return LogScan.from_json(content["scan"]), content["database"]
    except FileNotFoundError:
        log.warning("no scan checkpoint at %s: reading the whole log", path)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        log.warning("ignoring the scan checkpoint %s (%s): reading the whole log", path, e)
    return None


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()
