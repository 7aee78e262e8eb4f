"""Real actors over real SQLite stores, wired to each other by an in-process transport."""

import threading
import time
import uuid
from contextlib import contextmanager

import pytest

from actors.crash import CrashPoints
from actors.registry import Actors
from actors.role_actor import Failed, Snapshot, TimerFired, Wiring
from domain.config import SiteConfig, Timing
from domain.errors import StorageUnavailable
from domain.messages import AddPhotos, AskOutcome, Begin, CreateEvent, Decision, PhotoMeta, Prepare, Query
from eventstore.store import SiteStore

SITES = (0, 1, 2)
TIMING = Timing(prepare_timeout_s=1.0, resend_base_s=0.05, resend_max_s=0.2, in_doubt_s=0.3, ack_wait_s=0.5)


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def ask(actors, role, event_id, message, timeout=5.0):
    done = threading.Event()
    box = []

    def reply(value):
        box.append(value)
        done.set()

    actors.deliver(role, event_id, message, reply)
    assert done.wait(timeout), f"no reply to {message!r}"
    return box[0]


@contextmanager
def one_site(store, sites=(0,), send=lambda *a: None, **options):
    """Site 0's actors over `store` (their timers never fire); stopped, and the store closed,
    after the block."""
    wiring = Wiring(SiteConfig(0, sites, 10, TIMING), store, send, lambda d, cb: None, CrashPoints(None))
    actors = Actors(wiring, **options)
    try:
        yield actors
    finally:
        actors.stop_all()
        store.close()


class InProcessCluster:
    """Sites whose transport calls the other sites' actors directly (threads, no HTTP)."""

    def __init__(self, tmp_path, down=(), store_class=None):
        self.down = set(down)
        classes = store_class or {}  # site -> a SiteStore subclass for that site
        self.stores = {s: classes.get(s, SiteStore)("sqlite", tmp_path / f"site-{s}") for s in SITES}
        self.sites = {}
        for s in SITES:
            wiring = Wiring(
                config=SiteConfig(s, SITES, 10, TIMING),
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
        if any(type(e).__name__ == "Acknowledged" for a in aggregates for e in a.pending_events):
            self.holding.set()
            assert self.release.wait(10)
        super().write(aggregates)


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


class WatchedStore(SiteStore):
    """Calls `watch` with the records' names before each save."""

    watch = staticmethod(lambda names: None)

    def write(self, aggregates):
        self.watch([type(e).__name__ for a in aggregates for e in a.pending_events])
        super().write(aggregates)


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


class FailingStore(SiteStore):
    def __init__(self, *args):
        super().__init__(*args)
        self.fail = True

    def write(self, aggregates):
        if self.fail:
            raise StorageUnavailable("disk full")
        super().write(aggregates)


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


def test_an_idle_actor_is_stopped_and_a_later_message_finds_its_state_rebuilt_from_the_store(tmp_path):
    store = SiteStore("sqlite", tmp_path)
    with one_site(store, idle_s=0.0) as actors:
        event_id = str(uuid.uuid4())
        assert ask(actors, "participant", event_id, Prepare("0-t1", event_id, 0, CreateEvent("Picnic", 0, "now"))).yes
        assert actors.running == 1
        assert actors.sweep() == 1 and actors.running == 0
        assert ask(actors, "participant", event_id, Decision("0-t1", event_id, True)).site == 0
        assert ask(actors, "participant", event_id, Snapshot()).title == "Picnic"


def test_a_coordinator_with_a_transaction_preparing_is_not_stopped_when_idle(tmp_path):
    store = SiteStore("sqlite", tmp_path)
    with one_site(store, sites=(0, 1), idle_s=0.0) as actors:
        event_id = str(uuid.uuid4())
        actors.deliver("coordinator", event_id, Begin("0-t1", event_id, CreateEvent("P", 0, "now"), (0, 1)))
        wait_for(lambda: store.load_coordination(event_id) is not None)
        assert actors.sweep() == 0 and actors.running == 1  # its yes votes live only in memory


def test_past_max_running_the_least_recently_used_idle_actors_stop_and_keep_their_state(tmp_path):
    store = SiteStore("sqlite", tmp_path)
    with one_site(store, idle_s=3600.0, max_running=3) as actors:
        events = [str(uuid.uuid4()) for _ in range(6)]
        for n, event_id in enumerate(events):
            prepare = Prepare(f"0-t{n}", event_id, 0, CreateEvent(f"Event {n}", 0, "now"))
            assert ask(actors, "participant", event_id, prepare).yes
        assert actors.running == 6

        assert actors.trim() == 3 and actors.running == 3
        assert actors.trim() == 0  # at the limit: nothing more to do
        for n, event_id in enumerate(events):  # the stopped ones come back from the store
            assert ask(actors, "participant", event_id, Snapshot()).prepared.txn_id == f"0-t{n}"


def test_a_crowd_is_trimmed_an_eighth_below_max_running_in_one_batch(tmp_path):
    store = SiteStore("sqlite", tmp_path)
    with one_site(store, idle_s=3600.0, max_running=16) as actors:
        events = [str(uuid.uuid4()) for _ in range(17)]
        for n, event_id in enumerate(events):
            assert ask(actors, "participant", event_id, Prepare(f"0-t{n}", event_id, 0, CreateEvent("E", 0, "now"))).yes
        assert actors.trim() == 3 and actors.running == 14  # 16 - 16 // 8: room for the next few
        assert actors.trim() == 0
        assert ask(actors, "participant", events[0], Snapshot()).prepared.txn_id == "0-t0"  # from what it left


def test_past_max_running_an_actor_that_must_not_stop_is_passed_over_for_the_next(tmp_path):
    """Retired together (asked at once), the least recently used that may stop go; one holding
    what only memory has stays, and the next in line goes in its place."""
    store = SiteStore("sqlite", tmp_path)
    with one_site(store, sites=(0, 1), idle_s=3600.0, max_running=2) as actors:
        busy = str(uuid.uuid4())
        actors.deliver("coordinator", busy, Begin("0-t", busy, CreateEvent("P", 0, "now"), (0, 1)))
        wait_for(lambda: store.load_coordination(busy) is not None)  # preparing: its votes in memory
        events = [str(uuid.uuid4()) for _ in range(3)]
        for n, event_id in enumerate(events):
            assert ask(actors, "participant", event_id, Prepare(f"0-t{n}", event_id, 0, CreateEvent("E", 0, "now"))).yes
        assert actors.running == 4

        assert actors.trim() == 2 and actors.running == 2
        assert ask(actors, "coordinator", busy, Snapshot()).txns["0-t"].phase == "preparing"
        assert actors.running == 2  # the coordinator never stopped: asking it started nothing
        assert ask(actors, "participant", events[2], Snapshot()).prepared.txn_id == "0-t2"


def test_the_sweeper_keeps_the_running_actors_near_max_running_while_they_are_used(tmp_path):
    with one_site(SiteStore("sqlite", tmp_path), idle_s=3600.0, max_running=4) as actors:
        actors.start_sweeping(every_s=3600.0)  # only crowding wakes it
        for n in range(40):
            event_id = str(uuid.uuid4())
            assert ask(actors, "participant", event_id, Prepare(f"0-t{n}", event_id, 0, CreateEvent("E", 0, "now"))).yes
        wait_for(lambda: actors.running <= 4)


def test_messages_sent_while_an_actor_is_being_retired_reach_its_successor_in_order(tmp_path):
    store = SiteStore("sqlite", tmp_path)
    with one_site(store, idle_s=0.0) as actors:
        event_id = str(uuid.uuid4())
        assert ask(actors, "participant", event_id, Prepare("0-t1", event_id, 0, CreateEvent("P", 0, "now"))).yes
        answers = []
        retiring = threading.Thread(target=actors.sweep)
        retiring.start()
        for _ in range(50):  # some land before, some during, some after the retirement
            answers.append(ask(actors, "participant", event_id, Decision("0-t1", event_id, True)))
        retiring.join()
        assert all(a.site == 0 for a in answers)  # every duplicate decision acknowledged
        events = [e for e in store.app.recorder.select_events(uuid.UUID(event_id))]
        assert [store.app.mapper.to_domain_event(e).__class__.__name__ for e in events][-1] == "Committed"
        assert len(events) == 3  # created, prepared, committed once: no actor wrote twice


class CountingStore(SiteStore):
    loads = 0

    def load_event(self, event_id):
        self.loads += 1
        return super().load_event(event_id)


def test_an_actor_for_an_event_never_seen_here_starts_without_reading_the_store(tmp_path):
    store = CountingStore("sqlite", tmp_path)
    with one_site(store, idle_s=0.0) as actors:
        event_id = str(uuid.uuid4())
        assert ask(actors, "participant", event_id, Prepare("0-t1", event_id, 0, CreateEvent("P", 0, "now"))).yes
        assert store.loads == 0
        assert actors.sweep() == 1
        assert ask(actors, "participant", event_id, Decision("0-t1", event_id, True)).site == 0
        assert store.loads == 0  # the second actor for it takes what the first one left
        assert ask(actors, "participant", event_id, Snapshot()).exists

    restarted = CountingStore("sqlite", tmp_path)  # a restart: the scan says what is logged
    with one_site(restarted) as actors:
        actors.recover(restarted.scan())
        assert ask(actors, "participant", event_id, Snapshot()).title == "P"
        assert restarted.loads == 1

def test_a_retired_actor_is_freed_at_once_not_left_to_the_garbage_collector(tmp_path):
    """A retired actor holds no reference cycle (its inbox lets go of it), so it is freed when
    its last turn ends, with the garbage collector off: five actors per create would otherwise
    be cyclic garbage for the collector's full passes."""
    import gc
    import weakref

    from actors.participant import ParticipantActor

    store = SiteStore("sqlite", tmp_path)
    with one_site(store, idle_s=0.0) as actors:
        events = [str(uuid.uuid4()) for _ in range(3)]
        for event_id in events:
            assert ask(actors, "participant", event_id, Prepare("0-t1", event_id, 0, CreateEvent("P", 0, "now"))).yes
        running = [weakref.ref(o) for o in gc.get_objects()
                   if isinstance(o, ParticipantActor) and o.event_id in events]
        assert len(running) == 3
        gc.disable()
        try:
            assert actors.sweep() == 3
            wait_for(lambda: all(r() is None for r in running))
        finally:
            gc.enable()
        assert ask(actors, "participant", events[0], Snapshot()).prepared.txn_id == "0-t1"


def test_a_retired_actor_stops_itself_and_one_that_answered_too_late_runs_on(tmp_path, monkeypatch):
    """An actor whose answer the registry took stops in the turn that gave it (no stop message
    follows); one whose answer came after the registry gave up on it is not stopped by it, and
    takes the next message itself: nothing told to it is lost to a stop."""
    import pykka

    import actors.registry as registry

    store = CountingStore("sqlite", tmp_path)
    with one_site(store, idle_s=0.0, threads=1) as actors:
        late, retired = str(uuid.uuid4()), str(uuid.uuid4())
        for event_id in (late, retired):
            assert ask(actors, "participant", event_id, Prepare("0-t1", event_id, 0, CreateEvent("P", 0, "now"))).yes
        refs = dict(actors._refs)

        monkeypatch.setattr(registry, "IDLE_CHECK_TIMEOUT_S", 0.05)
        gate = threading.Event()
        actors.pool.submit(gate.wait)  # the one pool thread is held: no actor can answer in time
        assert actors._retire([("participant", late)], idle_for=0.0) == 0
        gate.set()
        assert ask(actors, "participant", late, Decision("0-t1", late, True)).site == 0
        assert actors._refs[("participant", late)] is refs[("participant", late)]
        assert refs[("participant", late)].is_alive() and store.loads == 0

        monkeypatch.setattr(registry, "IDLE_CHECK_TIMEOUT_S", 1.0)
        asked = []
        monkeypatch.setattr(pykka.ActorRef, "stop", lambda self, *a, **k: asked.append(self))
        assert actors._retire([("participant", retired)], idle_for=0.0) == 1
        wait_for(lambda: not refs[("participant", retired)].is_alive())
        assert asked == []  # stopped by itself, not by a stop message
        assert ask(actors, "participant", retired, Decision("0-t1", retired, True)).site == 0
        assert store.loads == 0  # its successor took what it left


def test_an_actor_started_again_takes_what_its_retired_predecessor_left_and_stores_on_from_it(tmp_path):
    store = CountingStore("sqlite", tmp_path)
    with one_site(store, sites=(0, 1), idle_s=0.0) as actors:
        event_id = str(uuid.uuid4())
        for n in range(3):  # each transaction by a new actor, the one before it retired
            txn = f"1-t{n}"
            photo = PhotoMeta(f"p{n}", f"{n:064x}", f"{n + 100:064x}", "ana", 1)
            payload = CreateEvent("P", 1, "now") if n == 0 else AddPhotos(n - 1, (photo,))
            assert ask(actors, "participant", event_id, Prepare(txn, event_id, 1, payload)).yes
            assert actors.sweep() == 1
            assert ask(actors, "participant", event_id, Decision(txn, event_id, True)).site == 0
            assert actors.sweep() == 1
        left = actors._left[("participant", event_id)]
        stored = store._get(left.aggregate.id)
        assert store.loads == 0
        assert (left.aggregate.state, left.aggregate.version) == (stored.state, stored.version) == (
            store._replay(left.aggregate.id).state, 7)  # created, then 3 x (prepared, committed)
        assert left.state.version == 2 and left.state.outcomes == {"1-t0": True, "1-t1": True, "1-t2": True}


def test_an_actor_whose_store_failed_is_read_back_from_the_store_not_from_memory(tmp_path):
    store = FailingStore("sqlite", tmp_path)
    store.fail = False
    with one_site(store, idle_s=0.0) as actors:
        event_id = str(uuid.uuid4())
        assert ask(actors, "participant", event_id, Prepare("0-t1", event_id, 0, CreateEvent("P", 0, "now"))).yes
        store.fail = True
        assert isinstance(ask(actors, "participant", event_id, Decision("0-t1", event_id, True)), Failed)
        assert actors.sweep() == 1
        left = actors._left[("participant", event_id)]
        assert left.aggregate.state.prepared.txn_id == "0-t1"  # what is stored: not committed
        assert left.aggregate.version == 2 and not left.aggregate.pending_events
        store.fail = False
        assert ask(actors, "participant", event_id, Decision("0-t1", event_id, True)).site == 0
        assert ask(actors, "participant", event_id, Snapshot()).exists
        assert store.load_event(event_id).state.exists  # stored at the version after the first


def test_a_timer_of_a_retired_actor_is_dropped_only_when_it_would_change_nothing(tmp_path):
    store = SiteStore("sqlite", tmp_path)
    sent = []
    with one_site(store, sites=(0, 1), send=lambda site, msg, reply: sent.append(msg), idle_s=0.0) as actors:
        decided, in_doubt = str(uuid.uuid4()), str(uuid.uuid4())
        for event_id in (decided, in_doubt):
            assert ask(actors, "participant", event_id, Prepare("1-t", event_id, 1, CreateEvent("P", 1, "now"))).yes
        assert ask(actors, "participant", decided, Decision("1-t", decided, True)).site == 0
        assert actors.sweep() == 2 and actors.running == 0

        actors.mailbox("participant", decided)(TimerFired(AskOutcome("1-t", 1)))
        assert actors.timers_dropped == 1 and actors.running == 0  # no actor started for it

        actors.mailbox("participant", in_doubt)(TimerFired(AskOutcome("1-t", 1)))
        wait_for(lambda: any(isinstance(m, Query) and m.event_id == in_doubt for m in sent))
        assert actors.timers_dropped == 1 and actors.running == 1  # it asks around


def test_a_timer_of_a_running_actor_that_its_state_makes_obsolete_costs_it_no_turn(tmp_path, monkeypatch):
    from actors.participant import ParticipantActor

    store = SiteStore("sqlite", tmp_path)
    timers, sent, turns = [], [], []
    wiring = Wiring(SiteConfig(0, (0, 1), 10, TIMING), store, lambda site, msg, reply: sent.append(msg),
                    lambda delay, callback: timers.append(callback), CrashPoints(None))
    decide = ParticipantActor.decide
    monkeypatch.setattr(ParticipantActor, "decide", lambda self, state, message: turns.append(message) or decide(self, state, message))
    actors = Actors(wiring, idle_s=60.0)
    try:
        decided, in_doubt = str(uuid.uuid4()), str(uuid.uuid4())
        for event_id in (decided, in_doubt):
            assert ask(actors, "participant", event_id, Prepare("1-t", event_id, 1, CreateEvent("P", 1, "now"))).yes
        assert ask(actors, "participant", decided, Decision("1-t", decided, True)).site == 0
        assert len(timers) == 2 and actors.running == 2  # each prepare's doubt timer; both still run
        before = len(turns)
        timers[0]()  # the decided one's: obsolete in its actor's state, dropped where it fired
        assert actors.timers_dropped == 1 and len(turns) == before
        timers[1]()  # the one in doubt asks around
        wait_for(lambda: any(isinstance(m, Query) and m.event_id == in_doubt for m in sent))
        assert actors.timers_dropped == 1 and len(turns) == before + 1
    finally:
        actors.stop_all()
        store.close()


def failing_send(site, message, reply):
    raise ConnectionError("the transport broke")


def test_a_send_that_fails_after_the_store_is_an_indefinite_failure_and_the_timers_are_set(tmp_path):
    store = SiteStore("sqlite", tmp_path)
    timers = []
    wiring = Wiring(SiteConfig(0, (0, 1), 10, TIMING), store, failing_send,
                    lambda delay, callback: timers.append(delay), CrashPoints(None))
    actors = Actors(wiring)
    try:
        event_id = str(uuid.uuid4())
        begin = Begin("0-t1", event_id, CreateEvent("Picnic", 0, "now"), (0, 1))
        answer = ask(actors, "coordinator", event_id, begin)
        assert isinstance(answer, Failed) and answer.after_stored  # Began is stored: it may go on
        assert store.load_coordination(event_id) is not None
        assert TIMING.prepare_timeout_s in timers  # its prepare timeout, though no prepare left

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
        finished = await service.run_transaction(str(uuid.uuid4()), CreateEvent("Picnic", 0, "now"))
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
