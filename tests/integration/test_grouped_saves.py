"""Group commit: the saves of many actors (or threads) go to the disk together, each one
durable before anything answers for it, and an actor whose save is pending takes no other
message (eventstore.store: save, save_later, flush; actors.pool: the flush and the wait)."""

from __future__ import annotations

import threading
import uuid

from actors.role_actor import Failed, Snapshot
from domain.messages import CreateEvent, Prepare
from eventstore.store import SiteStore
from tests.integration.actor_sites import FailingStore, ask, one_site, wait_for


def test_concurrent_saves_are_grouped_and_each_one_is_durable(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from domain.aggregates import PhotoEvent
    from domain.records import Prepared

    store = SiteStore("sqlite", tmp_path)
    ids = [str(uuid.uuid4()) for _ in range(40)]

    def save(event_id):
        event = PhotoEvent(event_id=event_id)
        event.record(Prepared("t", 0, CreateEvent("P", 0, "now")))
        store.save(event)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(save, ids))
    commits, records = store.written()  # what /metrics shows (photos_store_commits, _records)
    assert records == 80 and 1 <= commits <= 40  # each save's Created and Prepared, grouped
    store.close()
    reopened = SiteStore("sqlite", tmp_path)
    assert all(reopened.load_event(e).state.prepared.txn_id == "t" for e in ids)
    assert reopened.scan().participants_in_doubt == set(ids)
    reopened.close()


class CountedStore(SiteStore):
    """Counts database transactions and the aggregates in each (`entered` as each reaches the
    store, `writes` once written); `gate`, while not set, holds them."""

    def __init__(self, *args):
        super().__init__(*args)
        self.entered: list[int] = []
        self.writes: list[int] = []
        self.gate = threading.Event()
        self.gate.set()

    def write(self, aggregates):
        self.entered.append(len(aggregates))
        assert self.gate.wait(10)
        self.writes.append(len(aggregates))
        return super().write(aggregates)

    def queued(self) -> int:
        """Saves queued or held at the gate, none of them written."""
        return len(self._later) + sum(self.entered) - sum(self.writes)


def test_the_actors_saves_share_forced_writes_and_each_is_durable_before_its_answer(tmp_path):
    """Saves queued by actors (SiteStore.save_later) go together in the pool's next flush; a
    message's answer leaves only once its records are stored."""
    store = CountedStore("sqlite", tmp_path)
    store.gate.clear()
    with one_site(store, threads=4) as actors:
        ids = [str(uuid.uuid4()) for _ in range(40)]
        answers = []
        for n, event_id in enumerate(ids):
            actors.deliver("participant", event_id, Prepare(f"0-t{n}", event_id, 0, CreateEvent("E", 0, "now")),
                           answers.append)
        wait_for(lambda: store.queued() == 40)  # every step taken, no record written
        assert answers == []  # nothing answered while nothing is stored
        store.gate.set()
        wait_for(lambda: len(answers) == 40)
        assert all(a.yes for a in answers)
        assert sum(store.writes) == 40 and len(store.writes) < 40  # grouped: fewer forced writes than saves
        assert store.written() == (len(store.writes), 40)  # each a Created carrying its Prepared
    reopened = SiteStore("sqlite", tmp_path)
    assert reopened.scan().participants_in_doubt == set(ids)
    reopened.close()


def test_an_actor_whose_save_is_pending_takes_no_other_message_until_it_is_stored(tmp_path):
    store = CountedStore("sqlite", tmp_path)
    store.gate.clear()
    with one_site(store, threads=2) as actors:
        event_id, replies = str(uuid.uuid4()), []
        actors.deliver("participant", event_id, Prepare("0-t1", event_id, 0, CreateEvent("E", 0, "now")), replies.append)
        wait_for(lambda: store.entered)  # its write is held: one thread waits in it
        actors.deliver("participant", event_id, Snapshot(), replies.append)
        # The other thread takes turns in order: a turn for the snapshot would come before this.
        assert not ask(actors, "participant", str(uuid.uuid4()), Snapshot()).exists
        assert replies == []
        store.gate.set()
        wait_for(lambda: len(replies) == 2)
        vote, snapshot = replies
        assert vote.yes and snapshot.prepared.txn_id == "0-t1"  # the state after the stored step


def test_a_failed_flush_fails_every_save_in_it_and_each_actor_forgets_its_records(tmp_path):
    store = FailingStore("sqlite", tmp_path)
    with one_site(store) as actors:
        ids = [str(uuid.uuid4()) for _ in range(8)]
        replies = {e: [] for e in ids}
        for event_id in ids:
            actors.deliver("participant", event_id, Prepare("0-t", event_id, 0, CreateEvent("E", 0, "now")),
                           replies[event_id].append)
        wait_for(lambda: all(replies.values()))
        assert all(isinstance(r[0], Failed) and not r[0].after_stored for r in replies.values())
        assert store.written() == (0, 0)  # a failed write is no commit
        assert all(ask(actors, "participant", e, Snapshot()).prepared is None for e in ids)
        store.fail = False
        assert all(ask(actors, "participant", e, Prepare("0-t", e, 0, CreateEvent("E", 0, "now"))).yes for e in ids)


def test_pending_saves_are_flushed_within_a_bounded_number_of_turns_under_constant_load(tmp_path):
    """A thread that always finds another turn waiting still stores what the turns queued
    (actors.pool.FLUSH_EVERY), so a busy site's answers are not held back indefinitely."""
    from actors.pool import ActorPool

    pool = ActorPool(1)
    flushed, ran = [], []
    pool.flush = lambda: bool(flushed.append(len(ran)))
    try:
        done = threading.Event()

        def turn(n):
            ran.append(n)
            if n < 200:
                pool.submit(lambda: turn(n + 1))  # another turn always waits
            else:
                done.set()

        pool.submit(lambda: turn(0))
        assert done.wait(10)
        gaps = [b - a for a, b in zip(flushed, flushed[1:])]
        assert flushed and max(gaps) <= 32
    finally:
        pool.shutdown()
