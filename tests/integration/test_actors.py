"""Real actors over real SQLite stores, wired to each other by an in-process transport: the
protocol's transactions through them, and what a store or a send that fails does to them.
(Actors retired and started again: test_actor_retirement.py.)"""

import threading
import uuid

import pytest

from actors.crash import CrashPoints
from actors.registry import Actors
from actors.role_actor import Failed, Snapshot, Wiring
from domain.config import SiteConfig, Timing
from domain.errors import StorageUnavailable
from domain.messages import Begin, CreateEvent, Decision, Prepare, Query, StartRound
from eventstore.store import SiteStore
from tests.integration.actor_sites import TIMING, FailingStore, ask, one_site, pending_records, wait_for

SITES = (0, 1, 2)


class InProcessCluster:
    """Sites whose transport calls the other sites' actors directly (threads, no HTTP)."""

    def __init__(self, tmp_path, down=(), store_class=None, timing=TIMING):
        self.down = set(down)
        classes = store_class or {}  # site -> a SiteStore subclass for that site
        self.stores = {s: classes.get(s, SiteStore)("sqlite", tmp_path / f"site-{s}") for s in SITES}
        self.sites = {}
        for s in SITES:
            wiring = Wiring(
                config=SiteConfig(s, SITES, 10, timing),
                store=self.stores[s],
                send=self._sender(s),
                schedule=lambda delay, cb: threading.Timer(delay, cb).start(),
                crash=CrashPoints(None),
            )
            self.sites[s] = Actors(wiring)

    def _sender(self, origin):
        def send(site, message, reply):
            def deliver():
                if site in self.down:
                    from domain.messages import Unreachable

                    reply(Unreachable(site, message))
                    return
                answer = ask(self.sites[site], "participant", message.event_id, message)
                if isinstance(message, Query) and answer.commit is None and message.coordinator == site:
                    answer = ask(self.sites[site], "coordinator", message.event_id, message)
                reply(answer)

            threading.Thread(target=deliver, daemon=True).start()

        return send

    def state(self, site, event_id):
        return ask(self.sites[site], "participant", event_id, Snapshot())

    def close(self):
        for actors in self.sites.values():
            actors.stop_all()
        for store in self.stores.values():
            store.close()


@pytest.fixture
def cluster(tmp_path):
    c = InProcessCluster(tmp_path)
    yield c
    c.close()


def test_a_created_event_is_held_by_every_site_once_the_coordinator_finishes(cluster):
    event_id = str(uuid.uuid4())
    begin = Begin("0-t1", event_id, CreateEvent("Picnic", 0, "2026-11-26T10:00:00+00:00"), SITES)
    finished = ask(cluster.sites[0], "coordinator", event_id, begin)
    assert finished.commit is True
    for s in SITES:
        assert cluster.state(s, event_id).title == "Picnic"
        assert cluster.stores[s].load_event(event_id).state.exists  # durable, not only in memory


def test_a_site_that_cannot_be_reached_during_prepare_aborts_the_creation_everywhere(tmp_path):
    c = InProcessCluster(tmp_path, down={2})
    try:
        event_id = str(uuid.uuid4())
        begin = Begin("0-t1", event_id, CreateEvent("Picnic", 0, "now"), SITES)
        finished = ask(c.sites[0], "coordinator", event_id, begin)
        assert (finished.commit, finished.reason) == (False, "unreachable")
        for s in (0, 1):
            wait_for(lambda s=s: c.state(s, event_id).outcomes.get("0-t1") is False)
            assert not c.state(s, event_id).exists
    finally:
        c.close()


class HeldStore(SiteStore):
    """Holds every save of a coordinator's acknowledgements until `release` is set."""

    def __init__(self, *args):
        super().__init__(*args)
        self.release = threading.Event()
        self.holding = threading.Event()

    def write(self, aggregates):
        if "Acknowledged" in pending_records(aggregates):
            self.holding.set()
            assert self.release.wait(10)
        return super().write(aggregates)


def test_a_client_hears_of_its_commit_before_the_acknowledgements_are_stored(tmp_path):
    c = InProcessCluster(tmp_path, store_class={0: HeldStore})
    held = c.stores[0]
    try:
        event_id = str(uuid.uuid4())
        begin = Begin("0-t1", event_id, CreateEvent("Picnic", 0, "now"), SITES)
        finished = ask(c.sites[0], "coordinator", event_id, begin)  # while the save is held
        assert finished.commit is True and held.holding.is_set() and not held.release.is_set()
        for s in (1, 2):  # every participant had stored the commit before it acknowledged
            assert c.stores[s].load_event(event_id).state.exists
        assert not held.load_coordination(event_id).state.txns["0-t1"].acks
        held.release.set()
        wait_for(lambda: held.load_coordination(event_id).state.txns["0-t1"].acks == set(SITES))
    finally:
        held.release.set()
        c.close()


class BeganLostStore(SiteStore):
    """Fails the write of a Began once the other sites prepared its transaction (they had its
    prepare before it was stored), then works again: a Began lost, as a crash would lose it."""

    others_prepared = staticmethod(lambda: True)

    def __init__(self, *args):
        super().__init__(*args)
        self.lost = threading.Event()

    def write(self, aggregates):
        if not self.lost.is_set() and "Began" in pending_records(aggregates):
            wait_for(self.others_prepared)
            self.lost.set()
            raise StorageUnavailable("disk full")
        return super().write(aggregates)


def test_a_create_whose_began_was_not_stored_after_its_prepares_went_is_aborted_where_it_was_prepared(tmp_path):
    """Presumed abort: the prepares go while the Began is stored. When that write fails, the
    client hears of the failure, the coordinator knows nothing of the transaction, and it tells
    the sites it asked to abort (they would otherwise wait in doubt, here for 60 s, and ask)."""
    patient = Timing(prepare_timeout_s=60.0, resend_base_s=60.0, resend_max_s=60.0, in_doubt_s=60.0,
                     ack_wait_s=60.0)
    c = InProcessCluster(tmp_path, store_class={0: BeganLostStore}, timing=patient)
    event_id = str(uuid.uuid4())

    def prepared_at(site) -> bool:
        stored = c.stores[site].load_event(event_id)
        return stored is not None and stored.state.prepared is not None

    c.stores[0].others_prepared = lambda: prepared_at(1) and prepared_at(2)
    try:
        begin = Begin("0-t1", event_id, CreateEvent("Picnic", 0, "now"), SITES)
        failed = ask(c.sites[0], "coordinator", event_id, begin)
        assert isinstance(failed, Failed) and isinstance(failed.as_error(), StorageUnavailable)
        assert c.stores[0].lost.is_set()
        assert "0-t1" not in ask(c.sites[0], "coordinator", event_id, Snapshot()).txns
        for s in (1, 2):  # told, not asking: their doubt would last 60 s
            wait_for(lambda s=s: c.state(s, event_id).outcomes.get("0-t1") is False)
            assert c.state(s, event_id).reasons["0-t1"] == "storage_unavailable"
            assert not c.stores[s].load_event(event_id).state.exists
            assert c.stores[s].load_event(event_id).state.prepared is None
        assert not c.state(0, event_id).exists
    finally:
        c.close()


class WatchedStore(SiteStore):
    """Calls `watch` with the records' names before each save."""

    watch = staticmethod(lambda names: None)

    def write(self, aggregates):
        self.watch(pending_records(aggregates))
        return super().write(aggregates)


def test_an_abort_is_answered_only_once_its_decision_is_stored(tmp_path):
    c = InProcessCluster(tmp_path, down={2}, store_class={0: WatchedStore})
    try:
        event_id, replies, seen_at_decision = str(uuid.uuid4()), [], []
        c.stores[0].watch = lambda names: "Decided" in names and seen_at_decision.append(list(replies))
        begin = Begin("0-t1", event_id, CreateEvent("Picnic", 0, "now"), SITES)
        c.sites[0].deliver("coordinator", event_id, begin, replies.append)
        wait_for(lambda: replies)
        assert replies[0].commit is False
        assert seen_at_decision == [[]]  # no answer had gone out when the decision was saved
        assert c.stores[0].load_coordination(event_id).state.txns["0-t1"].phase == "aborted"
    finally:
        c.close()


def test_an_actor_survives_a_failed_store_and_forgets_what_it_could_not_store(tmp_path):
    store = FailingStore("sqlite", tmp_path)
    with one_site(store) as actors:
        event_id = str(uuid.uuid4())
        prepare = Prepare("0-t1", event_id, 0, CreateEvent("Picnic", 0, "now"))
        answer = ask(actors, "participant", event_id, prepare)
        assert isinstance(answer, Failed) and isinstance(answer.error, StorageUnavailable)
        assert not answer.after_stored  # definite: nothing was stored
        assert actors.running == 1  # the same actor, alive
        assert ask(actors, "participant", event_id, Snapshot()).prepared is None  # nothing half-done
        store.fail = False
        assert ask(actors, "participant", event_id, prepare).yes is True
        assert ask(actors, "participant", event_id, Decision("0-t1", event_id, True)).site == 0
        assert ask(actors, "participant", event_id, Snapshot()).exists


def failing_send(site, message, reply):
    raise ConnectionError("the transport broke")


START = StartRound(1, 1, 1e10, ("u1",))  # a transaction whose Began is stored before it sends


def test_a_send_that_fails_after_the_store_is_an_indefinite_failure_and_the_timers_are_set(tmp_path):
    store = SiteStore("sqlite", tmp_path)
    timers = []
    wiring = Wiring(SiteConfig(0, (0, 1), 10, TIMING), store, failing_send,
                    lambda delay, callback: timers.append(delay), CrashPoints(None))
    actors = Actors(wiring)
    try:
        event_id = str(uuid.uuid4())
        answer = ask(actors, "coordinator", event_id, Begin("0-t1", event_id, START, (0, 1)))
        assert isinstance(answer, Failed) and answer.after_stored  # Began is stored: it may go on
        assert store.load_coordination(event_id) is not None
        assert TIMING.prepare_timeout_s in timers  # its prepare timeout, though no prepare left

        # A create sends before it stores (presumed abort): its failed send is definite.
        created = str(uuid.uuid4())
        begin = Begin("0-t2", created, CreateEvent("Picnic", 0, "now"), (0, 1))
        answer = ask(actors, "coordinator", created, begin)
        assert isinstance(answer, Failed) and not answer.after_stored
        assert store.load_coordination(created) is None

        prepare = Prepare("1-t1", event_id, 1, CreateEvent("Picnic", 1, "now"))
        answer = ask(actors, "participant", event_id, prepare)  # replies, then sends nothing
        assert answer.yes and TIMING.in_doubt_s in timers
    finally:
        actors.stop_all()
        store.close()


async def test_a_transaction_that_failed_after_being_stored_is_settled_by_its_coordinator(tmp_path):
    """Began was stored and the prepares never left: not a definite failure, and not a 504 at
    once either, since the site can still find out. The prepare timeout aborts it, and the
    client hears that definite outcome."""
    import asyncio

    from web.service import SiteService
    from web.settings import load_settings

    loop = asyncio.get_running_loop()
    settings = load_settings(None, site_count=2, data_dir=tmp_path)
    store = SiteStore("sqlite", tmp_path)
    service = SiteService(settings, 0, loop, store, None, None)
    wiring = Wiring(SiteConfig(0, (0, 1), 10, TIMING), store, failing_send,
                    lambda delay, callback: loop.call_soon_threadsafe(loop.call_later, delay, callback),
                    CrashPoints(None), on_change=service.on_change)
    service.actors = Actors(wiring)
    try:
        finished = await service.run_transaction(str(uuid.uuid4()), START)
        assert (finished.commit, finished.reason) == (False, "unreachable")
    finally:
        service.actors.stop_all()
        store.close()


def test_a_commit_this_site_cannot_apply_is_not_acknowledged_and_raises_an_alarm(tmp_path):
    alarms = []
    store = SiteStore("sqlite", tmp_path)
    wiring = Wiring(SiteConfig(0, (0, 1), 10, TIMING), store, lambda *a: None, lambda d, cb: None,
                    CrashPoints(None), on_alarm=alarms.append)
    actors = Actors(wiring)
    try:
        event_id = str(uuid.uuid4())
        for _ in range(3):  # the coordinator resends it
            assert ask(actors, "participant", event_id, Decision("1-t9", event_id, True)) is None
        assert [a.txn_id for a in alarms] == ["1-t9"] * 3  # the site shows it once (web.service)
        assert "never prepared" in alarms[0].problem
        assert store.load_event(event_id) is None  # nothing stored, nothing acknowledged
    finally:
        actors.stop_all()
        store.close()
