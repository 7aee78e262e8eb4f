"""Actors retired and started again, over a real SQLite store: idle and least-recently-used
retirement, what a retired actor leaves (and its successor takes), and its timers."""

import threading
import uuid

from actors.crash import CrashPoints
from actors.registry import Actors
from actors.role_actor import Failed, Snapshot, TimerFired, Wiring
from domain.config import SiteConfig
from domain.messages import AddPhotos, AskOutcome, Begin, CreateEvent, Decision, PhotoMeta, Prepare, Query
from eventstore.store import SiteStore
from tests.integration.actor_sites import TIMING, CountingStore, FailingStore, ask, one_site, wait_for


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
        assert len(events) == 2  # created with its prepared, committed once: no actor wrote twice


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
    takes the next message itself: nothing told to it is lost to a stop. (Both are busy when
    asked, so they answer in a turn: an actor at rest answers without one, below.)"""
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
        snapshots = []
        actors.deliver("participant", late, Snapshot(), snapshots.append)  # its turn is due
        assert actors._retire([("participant", late)], idle_for=0.0) == 0
        gate.set()
        wait_for(lambda: len(snapshots) == 1)
        assert ask(actors, "participant", late, Decision("0-t1", late, True)).site == 0
        assert actors._refs[("participant", late)] is refs[("participant", late)]
        assert refs[("participant", late)].is_alive() and store.loads == 0

        monkeypatch.setattr(registry, "IDLE_CHECK_TIMEOUT_S", 1.0)
        asked = []
        monkeypatch.setattr(pykka.ActorRef, "stop", lambda self, *a, **k: asked.append(self))
        gate.clear()
        actors.pool.submit(gate.wait)
        actors.deliver("participant", retired, Snapshot(), snapshots.append)  # busy when asked
        threading.Timer(0.1, gate.set).start()
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
            store._replay(left.aggregate.id).state, 6)  # created with the first prepared, committed, 2 x (prepared, committed)
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
        assert left.aggregate.version == 1 and not left.aggregate.pending_events  # created with its prepared
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


def test_an_actor_at_rest_is_retired_without_a_turn_and_one_that_must_stay_is_left_running(tmp_path):
    """An actor with no turn running or due and nothing in its inbox says what it leaves in the
    retiring thread, under its inbox's lock: it takes no turn for it (with the pool's one thread
    held, it could take none), stops there and then, and its successor starts from what it left.
    A coordinator holding a transaction that is still preparing says it must stay, and does."""
    store = CountingStore("sqlite", tmp_path)
    with one_site(store, sites=(0, 1), idle_s=0.0, threads=1) as actors:
        idle, preparing = str(uuid.uuid4()), str(uuid.uuid4())
        assert ask(actors, "participant", idle, Prepare("0-t1", idle, 0, CreateEvent("P", 0, "now"))).yes
        actors.deliver("coordinator", preparing, Begin("0-t2", preparing, CreateEvent("P", 0, "now"), (0, 1)))
        wait_for(lambda: ask(actors, "coordinator", preparing, Snapshot()).txns)
        refs = dict(actors._refs)
        gate = threading.Event()
        actors.pool.submit(gate.wait)  # no turn can run until the gate opens
        try:
            assert actors._retire([("participant", idle), ("coordinator", preparing)], idle_for=0.0) == 1
            assert not refs[("participant", idle)].is_alive()
            assert refs[("coordinator", preparing)].is_alive()
            assert actors._refs[("coordinator", preparing)] is refs[("coordinator", preparing)]
            assert actors._left[("participant", idle)].state.prepared.txn_id == "0-t1"
        finally:
            gate.set()
        assert ask(actors, "participant", idle, Decision("0-t1", idle, True)).site == 0
        assert store.loads == 0  # its successor took what it left


def test_messages_told_while_actors_retire_at_rest_are_each_handled_once(tmp_path):
    """Retiring at rest races the messages told to the actor: every message is handled, by the
    actor or by its successor, in order, and none twice (each duplicate decision is answered,
    the log holds one Committed)."""
    store = SiteStore("sqlite", tmp_path)
    with one_site(store, idle_s=0.0) as actors:
        event_id = str(uuid.uuid4())
        assert ask(actors, "participant", event_id, Prepare("0-t1", event_id, 0, CreateEvent("P", 0, "now"))).yes
        stop = threading.Event()
        retired = []

        def retire() -> None:
            while not stop.is_set():
                retired.append(actors._retire([("participant", event_id)], idle_for=0.0))

        retiring = threading.Thread(target=retire)
        retiring.start()
        try:
            answers = [ask(actors, "participant", event_id, Decision("0-t1", event_id, True)) for _ in range(200)]
        finally:
            stop.set()
            retiring.join()
        assert all(a.site == 0 for a in answers)
        assert sum(retired) > 1  # actors were retired (at rest or in a turn) while the decisions came
        names = [store.app.mapper.to_domain_event(e).__class__.__name__
                 for e in store.app.recorder.select_events(uuid.UUID(event_id))]
        assert names == ["Created", "Committed"]
