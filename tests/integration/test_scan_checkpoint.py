"""The start-up scan from a checkpoint file plus the records after it, on real SQLite files.

Each history stores real aggregates: transactions begin before the checkpoint and are decided,
acknowledged or committed after it, so the checkpoint must carry what is still unfinished.
"""

import json
import os
import shutil
import uuid

import pytest

from domain.aggregates import Coordination, PhotoEvent
from domain.messages import AddPhotos, CreateEvent, PhotoMeta, Publish, StartRound
from domain.records import Aborted, Acknowledged, Began, Committed, Decided, Prepared
from eventstore import log_scan
from eventstore.log_scan import LogScan, read_checkpoint, write_checkpoint
from eventstore.log_scan import CHECKPOINT_AFTER
from eventstore.store import CHECKPOINT_FILE, SiteStore

SITES = (0, 1, 2, 3)
CREATE = CreateEvent("Picnic", 0, "2026-11-26T10:00:00+00:00")
UPLOAD = AddPhotos(1, (PhotoMeta("p1", "a" * 64, "b" * 64, "u1", 0),))
START = StartRound(1, 1, 1_900_000_000.0, ("u1",))
PUBLISH = Publish(1, 1, 1_900_000_000.0, ("u1",))
FULL_SCAN = "reading the whole log"


def decided_and_acknowledged(txn: str) -> list:
    return [Decided(txn, True, None), Acknowledged(txn, SITES)]


class History:
    """Events whose unfinished work straddles the checkpoint, stored through real aggregates."""

    def __init__(self, store: SiteStore):
        self.store = store
        self.ids = {name: str(uuid.uuid4()) for name in (
            "done", "committed_later", "in_doubt", "aborted_later",
            "decided_later", "acknowledged_later", "round_closed_later", "round_opened_later")}
        self.participants: dict[str, PhotoEvent] = {}
        self.coordinations: dict[str, Coordination] = {}

    def participant(self, name: str, *records) -> None:
        self._store(self.participants, PhotoEvent, name, records)

    def coordinator(self, name: str, *records) -> None:
        self._store(self.coordinations, Coordination, name, records)

    def _store(self, logs: dict, cls, name: str, records) -> None:
        """As the actors store a step's records: a new log's creation carries the first."""
        log = logs.get(name)
        if log is None:
            event_id = self.ids[name]
            state = cls.initial_state(event_id)
            for record in records:
                state = cls.fold(state, record)
            log = logs[name] = cls.begun(event_id, records, state)
        else:
            for record in records:
                log.record(record)
        self.store.save(log)

    def before_the_checkpoint(self) -> None:
        self.participant("done", Prepared("t0", 0, CREATE), Committed("t0"))
        self.coordinator("done", Began("t0", CREATE, SITES), *decided_and_acknowledged("t0"))
        self.participant("committed_later", Prepared("t1", 0, CREATE))
        self.participant("in_doubt", Prepared("t2", 0, CREATE))
        self.participant("aborted_later", Prepared("c8", 0, CREATE), Committed("c8"),
                         Prepared("t8", 0, UPLOAD))
        self.coordinator("decided_later", Began("t3", UPLOAD, SITES))
        self.coordinator("acknowledged_later", Began("t4", UPLOAD, SITES), Decided("t4", True, None))
        self.coordinator("round_closed_later", Began("t5", START, SITES), *decided_and_acknowledged("t5"))

    def after_the_checkpoint(self) -> None:
        self.participant("committed_later", Committed("t1"))
        self.participant("aborted_later", Aborted("t8", "no"))
        self.coordinator("decided_later", Decided("t3", True, None),
                         Acknowledged("t3", (0, 1)))
        self.coordinator("acknowledged_later", Acknowledged("t4", SITES))
        self.coordinator("round_closed_later", Began("t6", PUBLISH, SITES), *decided_and_acknowledged("t6"))
        self.coordinator("round_opened_later", Began("t7", START, SITES), *decided_and_acknowledged("t7"))

    def expected(self) -> dict:
        ids = self.ids
        return {
            "in doubt": {ids["in_doubt"]},
            "coordinators with work": {ids["decided_later"], ids["round_opened_later"]},
            "existing": {ids["done"], ids["committed_later"], ids["aborted_later"]},
        }


def summary(scan: LogScan) -> dict:
    return {
        "in doubt": scan.participants_in_doubt,
        "coordinators with work": scan.coordinators_with_work,
        "existing": scan.existing,
    }


def test_acknowledgements_stored_one_per_site_as_logs_before_did_finish_a_transaction():
    scan = LogScan()
    scan.take("c", "Coordination", "Created", {"event_id": "e"})
    scan.take("c", "Coordination", "Began", {"txn_id": "t", "payload": {"type": "AddPhotos"}, "sites": [0, 1, 2]})
    scan.take("c", "Coordination", "Decided", {"txn_id": "t", "commit": True, "reason": None})
    scan.take("c", "Coordination", "Acknowledged", {"txn_id": "t", "site": 0})
    scan.take("c", "Coordination", "Acknowledged", {"txn_id": "t", "sites": [2]})
    assert scan.coordinators_with_work == {"e"}  # site 1 has not acknowledged
    scan.take("c", "Coordination", "Acknowledged", {"txn_id": "t", "site": 1})
    assert scan.coordinators_with_work == set()


def fillers(store: SiteStore, records: int) -> set[str]:
    """At least `records` more records: events created and committed here, in one save."""
    events = []
    for _ in range(records // 3 + 1):
        event = PhotoEvent(event_id=str(uuid.uuid4()))
        event.record(Prepared("f", 0, CREATE))
        event.record(Committed("f"))
        events.append(event)
    store.save(*events)
    return {e.event_id for e in events}


def full_scan(site_dir) -> dict:
    """The fold of every record, read without going near a checkpoint."""
    store = SiteStore("sqlite", site_dir)
    try:
        scan = LogScan()
        scan.fold(store.app.recorder.select_notifications(1, 10**9))
        return scan.to_json()
    finally:
        store.close()


def start_up_scan(site_dir) -> LogScan:
    store = SiteStore("sqlite", site_dir)
    try:
        return store.scan()
    finally:
        store.close()


def checkpointed_history(site_dir) -> History:
    """A history whose store was checkpointed between its two halves, then closed."""
    store = SiteStore("sqlite", site_dir)
    history = History(store)
    history.before_the_checkpoint()
    store.checkpoint()
    history.after_the_checkpoint()
    store.close()
    return history


def plant(site_dir, event_id: str) -> None:
    """Rewrite the checkpoint, still sound, claiming an event the log never held."""
    scan, database = read_checkpoint(site_dir / CHECKPOINT_FILE)
    scan.existing.add(event_id)
    write_checkpoint(site_dir / CHECKPOINT_FILE, scan, database)


# --- a checkpoint and its tail -------------------------------------------------------------------
def test_a_scan_from_a_checkpoint_and_the_records_after_it_equals_a_full_scan(tmp_path, caplog):
    history = checkpointed_history(tmp_path)
    checkpoint, _ = read_checkpoint(tmp_path / CHECKPOINT_FILE)
    caplog.clear()

    scan = start_up_scan(tmp_path)

    assert FULL_SCAN not in caplog.text
    assert 0 < checkpoint.last_id < scan.last_id
    assert scan.to_json() == full_scan(tmp_path)
    assert summary(scan) == history.expected()


def test_the_scan_reads_only_the_records_after_the_checkpoint(tmp_path):
    checkpointed_history(tmp_path)
    phantom = str(uuid.uuid4())
    plant(tmp_path, phantom)

    assert phantom in start_up_scan(tmp_path).existing


def test_a_checkpoint_after_start_up_covers_every_record_stored_since(tmp_path):
    store = SiteStore("sqlite", tmp_path)
    history = History(store)
    history.before_the_checkpoint()
    store.scan()
    history.after_the_checkpoint()
    store.checkpoint()
    store.close()

    checkpoint, _ = read_checkpoint(tmp_path / CHECKPOINT_FILE)
    assert checkpoint.to_json() == full_scan(tmp_path)
    assert summary(checkpoint) == history.expected()


def test_a_start_up_that_read_a_long_tail_writes_a_checkpoint_at_once_and_a_short_one_does_not(tmp_path):
    store = SiteStore("sqlite", tmp_path)
    fillers(store, 10)
    store.scan()
    assert not (tmp_path / CHECKPOINT_FILE).exists()
    fillers(store, CHECKPOINT_AFTER)
    store.close()

    scan = start_up_scan(tmp_path)

    checkpoint, _ = read_checkpoint(tmp_path / CHECKPOINT_FILE)
    assert checkpoint.to_json() == scan.to_json() == full_scan(tmp_path)


def test_the_scan_a_caller_gets_does_not_change_when_the_store_checkpoints_later(tmp_path):
    store = SiteStore("sqlite", tmp_path)
    history = History(store)
    history.before_the_checkpoint()
    scan = store.scan()
    before = scan.to_json()
    history.after_the_checkpoint()
    store.checkpoint()
    store.close()
    assert scan.to_json() == before


# --- checkpoints that must not be trusted ----------------------------------------------------------
def _truncate(path, monkeypatch):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garble(path, monkeypatch):
    path.write_bytes(b"\x00\xff not json at all")


def _edit(path, monkeypatch):
    # still valid JSON of the right shape, for this very log, but not what was written
    stored = json.loads(path.read_text())
    assert stored["body"].count('"existing":[') == 1
    stored["body"] = stored["body"].replace('"existing":[', f'"existing":["{uuid.uuid4()}",')
    path.write_text(json.dumps(stored))


def _other_format(path, monkeypatch):
    scan, database = read_checkpoint(path)
    monkeypatch.setattr(log_scan, "FORMAT", log_scan.FORMAT + 1)
    write_checkpoint(path, scan, database)
    monkeypatch.undo()


def _remove(path, monkeypatch):
    path.unlink()


@pytest.mark.parametrize("damage", [_truncate, _garble, _edit, _other_format, _remove])
def test_a_damaged_or_missing_checkpoint_falls_back_to_the_full_scan(tmp_path, caplog, monkeypatch, damage):
    history = checkpointed_history(tmp_path)
    plant(tmp_path, str(uuid.uuid4()))  # trusting what is left would show this phantom
    path = tmp_path / CHECKPOINT_FILE
    damage(path, monkeypatch)
    caplog.clear()

    scan = start_up_scan(tmp_path)

    assert FULL_SCAN in caplog.text
    assert scan.to_json() == full_scan(tmp_path)
    assert summary(scan) == history.expected()


def test_a_checkpoint_from_another_database_falls_back_to_the_full_scan(tmp_path, caplog):
    checkpointed_history(tmp_path / "a")
    history = checkpointed_history(tmp_path / "b")  # as many records: only their identity differs
    shutil.copy(tmp_path / "a" / CHECKPOINT_FILE, tmp_path / "b" / CHECKPOINT_FILE)
    caplog.clear()

    scan = start_up_scan(tmp_path / "b")

    assert FULL_SCAN in caplog.text
    assert scan.to_json() == full_scan(tmp_path / "b")
    assert summary(scan) == history.expected()


def _database_files(site_dir) -> list:
    return sorted(site_dir.glob("events.sqlite*"))


@pytest.mark.parametrize("grown_since", [False, True])
def test_a_checkpoint_beyond_the_end_of_the_log_falls_back_to_the_full_scan(tmp_path, caplog, grown_since):
    """The database was restored from an older copy, perhaps written to again since."""
    site, backup = tmp_path / "site", tmp_path / "backup"
    store = SiteStore("sqlite", site)
    history = History(store)
    history.before_the_checkpoint()
    store.close()
    backup.mkdir()
    for f in _database_files(site):
        shutil.copy(f, backup)
    store = SiteStore("sqlite", site)
    history.store = store
    history.after_the_checkpoint()
    fillers(store, 30)
    store.checkpoint()
    store.close()
    for f in _database_files(site):
        f.unlink()
    for f in _database_files(backup):
        shutil.copy(f, site)
    if grown_since:
        store = SiteStore("sqlite", site)
        fillers(store, 300)
        store.close()
    caplog.clear()

    scan = start_up_scan(site)

    assert FULL_SCAN in caplog.text
    assert scan.to_json() == full_scan(site)


# --- writing the file ------------------------------------------------------------------------------
def test_each_checkpoint_folds_on_and_replaces_the_file_whole_leaving_no_temp_files(tmp_path):
    store = SiteStore("sqlite", tmp_path)
    history = History(store)
    history.before_the_checkpoint()
    store.checkpoint()
    first = (tmp_path / CHECKPOINT_FILE).stat().st_ino
    history.after_the_checkpoint()
    store.checkpoint()
    store.close()

    assert (tmp_path / CHECKPOINT_FILE).stat().st_ino != first  # a new file renamed over the old
    assert read_checkpoint(tmp_path / CHECKPOINT_FILE)[0].to_json() == full_scan(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} <= {CHECKPOINT_FILE, "events.sqlite", "events.sqlite-wal",
                                                    "events.sqlite-shm"}


def test_a_checkpoint_that_cannot_be_written_leaves_the_previous_one_whole(tmp_path, caplog, monkeypatch):
    store = SiteStore("sqlite", tmp_path)
    history = History(store)
    history.before_the_checkpoint()
    store.checkpoint()
    before = (tmp_path / CHECKPOINT_FILE).read_bytes()
    history.after_the_checkpoint()

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    store.checkpoint()
    monkeypatch.undo()
    store.close()

    assert "could not write the scan checkpoint" in caplog.text
    assert (tmp_path / CHECKPOINT_FILE).read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_a_store_on_a_sqlalchemy_url_keeps_no_checkpoint(tmp_path):
    """Ids there may become visible out of order, so every start reads the whole log."""
    store = SiteStore(f"sqlite:///{tmp_path / 'events.db'}", tmp_path)
    events = fillers(store, CHECKPOINT_AFTER + 10)
    assert store.scan().existing == events
    store.checkpoint()
    store.close()
    assert not (tmp_path / CHECKPOINT_FILE).exists()


# --- records folded as they are written ------------------------------------------------------------
class ReadsCounted:
    """The store's recorder, counting the records select_notifications hands out (the log's
    tail read back at a checkpoint; the identity reads of one record each aside)."""

    def __init__(self, store: SiteStore):
        self.read = 0
        recorder = store.app.recorder
        select = recorder.select_notifications

        def counted(start, limit, *args, **kwargs):
            found = select(start, limit, *args, **kwargs)
            if limit > 1:
                self.read += len(found)
            return found

        recorder.select_notifications = counted


def kept_fold(site_dir) -> tuple[SiteStore, History, ReadsCounted]:
    """A store with the first half of a history, checkpointed (from here on it keeps the fold),
    its reads of the log counted from then on."""
    store = SiteStore("sqlite", site_dir)
    history = History(store)
    history.before_the_checkpoint()
    store.checkpoint()
    return store, history, ReadsCounted(store)


def test_a_checkpoint_folds_what_the_writers_took_without_reading_it_back(tmp_path):
    store, history, reads = kept_fold(tmp_path)
    history.after_the_checkpoint()
    fillers(store, 30)
    store.checkpoint()
    store.close()

    assert reads.read == 0
    checkpoint, _ = read_checkpoint(tmp_path / CHECKPOINT_FILE)
    assert checkpoint.to_json() == full_scan(tmp_path)
    assert summary(checkpoint)["in doubt"] == history.expected()["in doubt"]


def test_records_written_past_the_fold_are_read_from_the_log_and_none_twice(tmp_path):
    store, history, reads = kept_fold(tmp_path)
    fillers(store, 10)
    # A batch committed that the fold never took (as if its writer failed after the commit),
    # between two it took: the fold reads just that gap from the log.
    gap = PhotoEvent(event_id=str(uuid.uuid4()))
    gap.record(Prepared("g", 0, CREATE))
    store.app.recorder.insert_events([store._encoder.stored(e) for e in gap.collect_events()])
    history.after_the_checkpoint()
    store.checkpoint()
    store.close()

    assert reads.read == 2  # the gap's Created and Prepared, nothing else
    checkpoint, _ = read_checkpoint(tmp_path / CHECKPOINT_FILE)
    assert checkpoint.to_json() == full_scan(tmp_path)
    assert gap.event_id in checkpoint.participants_in_doubt


def test_the_writers_fold_what_they_took_themselves_once_enough_waits(tmp_path):
    store = SiteStore("sqlite", tmp_path)
    store.checkpoint()
    for _ in range(log_scan.FOLD_TAKEN_AT + 5):
        fillers(store, 1)
    kept = store._scans
    assert len(kept._taken) < log_scan.FOLD_TAKEN_AT  # folded by a writer, no checkpoint since
    assert kept._scan.last_id > 0
    store.checkpoint()
    store.close()
    assert read_checkpoint(tmp_path / CHECKPOINT_FILE)[0].to_json() == full_scan(tmp_path)


def test_batches_taken_while_no_fold_is_kept_are_read_from_the_log_at_the_next_checkpoint(tmp_path):
    store = SiteStore("sqlite", tmp_path)
    history = History(store)
    history.before_the_checkpoint()
    store.scan()  # start-up hands its fold to the caller: none is kept until the next checkpoint
    history.after_the_checkpoint()
    reads = ReadsCounted(store)
    store.checkpoint()
    store.close()

    assert reads.read > 0
    assert read_checkpoint(tmp_path / CHECKPOINT_FILE)[0].to_json() == full_scan(tmp_path)


def test_the_events_logged_here_come_from_the_kept_fold_and_leave_it_kept(tmp_path):
    store, history, reads = kept_fold(tmp_path)
    history.after_the_checkpoint()
    participants, coordinators = store.logged_events()  # what the blob sweep asks every 600 s
    store.checkpoint()
    store.close()

    full = full_scan(tmp_path)
    assert (sorted(participants), sorted(coordinators)) == (full["logged"], full["coordinated"])
    assert reads.read == 0  # neither it nor the checkpoint after it read the log back
