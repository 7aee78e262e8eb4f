"""The actors of one site: started on demand per (role, event), stopped when idle, and resumed
from the log at start.

Every message to an actor goes through `deliver`, which starts the actor if it is not running.
Actors take turns on a pool of `threads` threads (actors.pool): starting and stopping one costs
no thread. Each running actor holds its state in memory, so with thousands of events only a
bounded number may run. An actor is retired (stopped) when it has been idle for `idle_s`, or,
once `max_running` run, when it is among the least recently used (an eighth of them go
together, asked at once); either way only if it holds nothing that only memory has (a
participant never does; a coordinator does while it prepares or a client waits). An actor at
rest (no turn running or due, nothing in its inbox: most are) answers in the retiring thread,
under its inbox's lock, and stops there and then; a busy one is asked in a turn of its own
(IdleCheck). Its timers and replies still arrive, through `deliver`, to a fresh actor that
starts from what it left (below).

A timer due for a retired actor is dropped, not delivered, when the state the actor left says
it would change nothing (a prepare timeout of a decided transaction, say): every transaction
leaves a few such timers behind, and each would otherwise start an actor again. An actor started
again for a retired one takes over the aggregate it left (what the store holds, as that actor
alone wrote it): no store read for what memory already knows. Only after a site restart, or once
more than LEFT_STATES actors have retired since, is an event's log read again.

Retiring never blocks `deliver` (the site's event loop calls it): while an actor is asked
whether it is idle and stopped, messages for its (role, event) wait in a list and go to whichever
actor plays the role afterwards, so two actors never write one aggregate.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict

import pykka

from actors.coordinator import CoordinatorActor
from actors.participant import ParticipantActor
from actors.pool import BUSY, ActorPool
from actors.role_actor import Envelope, IdleCheck, Left, Reply, TimerFired, Wiring
from domain.messages import Recover

log = logging.getLogger(__name__)

PARTICIPANT, COORDINATOR = "participant", "coordinator"
ROLES = {PARTICIPANT: ParticipantActor, COORDINATOR: CoordinatorActor}
IDLE_CHECK_TIMEOUT_S = 1.0  # an actor busy for longer than this is not idle anyway
LEFT_STATES = 4096  # what retired actors left, kept to judge their timers (least recent go)
RETIRE_BATCH = 64  # actors asked together whether they may stop (their messages wait meanwhile)


class Actors:
    def __init__(self, wiring: Wiring, idle_s: float = 10.0, max_running: int = 32, threads: int = 8):
        self.wiring = wiring
        self.pool = ActorPool(threads)
        self.pool.flush = wiring.store.flush  # the actors' saves, grouped
        self.idle_s = idle_s
        self.max_running = max_running
        self._lock = threading.Lock()
        self._refs: dict[tuple[str, str], pykka.ActorRef] = {}  # insertion order = use order
        self._last_used: dict[tuple[str, str], float] = {}
        self._retiring: dict[tuple[str, str], list[Envelope]] = {}  # messages held meanwhile
        self._left: OrderedDict[tuple[str, str], Left] = OrderedDict()  # what retired actors left
        self.timers_dropped = 0
        self._crowded = threading.Event()  # more than max_running run: retire some now
        self._stopping = threading.Event()
        # Events that may have a log here, per role: what the start-up scan found, and every
        # event an actor was started for since. An actor for any other event starts empty
        # without reading the store (most actors a site starts are for brand-new events).
        self.logged: set[str] = set()
        self.coordinated: set[str] = set()
        self._known = {PARTICIPANT: self.logged, COORDINATOR: self.coordinated}

    def deliver(self, role: str, event_id: str, message, reply: Reply | None = None) -> None:
        """Hand `message` to the actor of (role, event), starting it from the store if needed
        (none once the actors are stopping: then the message is dropped, its reply None)."""
        with self._lock:
            if not self._stopping.is_set() and self._tell((role, event_id), Envelope(message, reply)):
                return
        if reply is not None:
            reply(None)

    def _tell(self, key: tuple[str, str], envelope: Envelope) -> bool:
        """Under the lock: queue behind a retirement, or tell the running (or a new) actor."""
        held = self._retiring.get(key)
        if held is not None:
            held.append(envelope)
            return True
        ref = self._refs.pop(key, None)
        if ref is None or not ref.is_alive():
            role, event_id = key
            known = self._known[role]
            fresh = event_id not in known
            known.add(event_id)
            left = self._left.pop(key, None)  # the new actor moves on from it
            ref = ROLES[role].start(event_id, self.wiring, self.mailbox(*key), self.pool, fresh, left)
            if len(self._refs) >= self.max_running and not self._crowded.is_set():
                self._crowded.set()  # (is_set first: a set Event's set still takes its lock)
        self._refs[key] = ref  # re-inserted last: the dict's order is least recently used first
        self._last_used[key] = time.monotonic()
        try:
            ref.tell(envelope)
            return True
        except pykka.ActorDeadError:
            return False

    def mailbox(self, role: str, event_id: str) -> Reply:
        """Where an actor's replies and timers go: to whichever actor then plays that role."""
        def post(message) -> None:
            if message is None or self._stopping.is_set():
                return
            if isinstance(message, TimerFired):
                if message.obsolete or self._timer_obsolete(role, event_id, message.message):
                    with self._lock:
                        self.timers_dropped += 1
                    return
                message = message.message
            self.deliver(role, event_id, message)

        return post

    def _timer_obsolete(self, role: str, event_id: str, message) -> bool:
        key = (role, event_id)
        with self._lock:
            if key in self._refs or key in self._retiring:
                return False  # a running actor judges for itself
            left = self._left.get(key)
            return left is not None and ROLES[role].timer_obsolete(left.state, message)

    @property
    def running(self) -> int:
        return len(self._refs)

    def recover(self, scan) -> None:
        """Resume what the log says needs it (the store's LogScan): ask, resend, abort, wait."""
        self.logged |= scan.logged
        self.coordinated |= scan.coordinated
        participants, coordinators = scan.participants_in_doubt, scan.coordinators_with_work
        for event_id in sorted(participants):
            self.deliver(PARTICIPANT, event_id, Recover())
        for event_id in sorted(coordinators):
            self.deliver(COORDINATOR, event_id, Recover())
        log.info("%d events here; resumed %d participants and %d coordinators",
                 len(scan.logged), len(participants), len(coordinators))

    # --- retiring actors -------------------------------------------------------------------------
    def start_sweeping(self, every_s: float = 2.0) -> None:
        def loop() -> None:
            next_sweep = time.monotonic() + every_s
            while not self._stopping.is_set():
                self._crowded.wait(max(0.0, next_sweep - time.monotonic()))
                if self._stopping.is_set():
                    return
                self._crowded.clear()
                self.trim()
                if time.monotonic() >= next_sweep:
                    self.sweep()
                    next_sweep = time.monotonic() + every_s

        threading.Thread(target=loop, name="actor-sweeper", daemon=True).start()

    def sweep(self) -> int:
        """Retire the actors idle for idle_s that keep nothing in memory; how many stopped."""
        now = time.monotonic()
        with self._lock:
            idle = [k for k, t in self._last_used.items() if now - t > self.idle_s]
        return sum(self._retire(idle[i:i + RETIRE_BATCH], idle_for=self.idle_s)
                   for i in range(0, len(idle), RETIRE_BATCH))

    def trim(self) -> int:
        """Retire least recently used actors until at most max_running run, and an eighth
        fewer (so that each crowding retires a batch, not one at a time); how many stopped.
        How many is decided once: actors started meanwhile wait for the next crowding, rather
        than being chased a few at a time."""
        stopped, tried = 0, set()
        target = self.max_running - self.max_running // 8
        with self._lock:
            wanted = len(self._refs) - target
        while stopped < wanted:
            with self._lock:
                # least recently used first; one that refused went to the back, and is not asked again
                candidates = [k for k in self._refs if k not in tried][:min(wanted - stopped, RETIRE_BATCH)]
            if not candidates:
                return stopped
            tried.update(candidates)
            stopped += self._retire(candidates, idle_for=0.0)
        return stopped

    def _retire(self, keys: list[tuple[str, str]], idle_for: float) -> int:
        """Retire these actors together (each asked, none waited for alone); how many stopped."""
        picked = []
        with self._lock:
            now = time.monotonic()
            for key in keys:
                ref = self._refs.get(key)
                if ref is None or key in self._retiring:
                    continue
                if now - self._last_used.get(key, 0.0) < idle_for:
                    continue  # used since it was picked
                del self._refs[key]
                self._retiring[key] = []
                picked.append((key, ref))
        if not picked:
            return 0
        # From here on nothing reaches them. One at rest (no turn running or due, its inbox
        # empty) says what it leaves without a turn, and stops there and then if it may. The
        # others answer IdleCheck after everything already in their inbox, and one whose
        # answer is taken stops in the turn that gave it.
        answers = [ref.actor_inbox.retire_if_idle() for _, ref in picked]
        busy = [n for n, left in enumerate(answers) if left is BUSY]
        if busy:
            asked = _ask_all([picked[n][1] for n in busy], IdleCheck(), IDLE_CHECK_TIMEOUT_S)
            for n, left in zip(busy, asked):
                answers[n] = left
        undelivered = []
        with self._lock:
            for (key, ref), left in zip(picked, answers):
                held = self._retiring.pop(key)
                if left is None:
                    self._refs[key] = ref
                else:
                    self._last_used.pop(key, None)
                    self._left[key] = left
                    self._left.move_to_end(key)
                undelivered += [e for e in held if not self._tell(key, e)]
            while len(self._left) > LEFT_STATES:
                self._left.popitem(last=False)
        for envelope in undelivered:
            if envelope.reply is not None:
                envelope.reply(None)
        return sum(left is not None for left in answers)

    def stop_all(self) -> None:
        self._stopping.set()
        self._crowded.set()
        with self._lock:
            refs = list(self._refs.values())
            self._refs.clear()
        for ref in refs:
            try:
                ref.stop(block=False)
            except pykka.ActorDeadError:
                pass
        self.pool.shutdown()  # after the stops: its threads end once those are handled


def _ask_all(refs: list[pykka.ActorRef], message, timeout: float) -> list:
    """Each actor's answer to `message`, asked of all at once; None for an actor that did not
    answer within `timeout` (for all of them), or is dead. An answer after that is ignored (its
    reply returns False; True when taken)."""
    answers: list = [None] * len(refs)
    waiting = [len(refs)]
    lock, done = threading.Lock(), threading.Event()

    def answered(n: int, value) -> bool:
        """Whether the answer is taken (False once given up on)."""
        with lock:
            if waiting[0] <= 0:
                return False
            answers[n] = value
            waiting[0] -= 1
            if waiting[0] == 0:
                done.set()
            return True

    for n, ref in enumerate(refs):
        try:
            ref.tell(Envelope(message, lambda value, n=n: answered(n, value)))
        except pykka.ActorDeadError:
            answered(n, None)
    done.wait(timeout)
    with lock:
        waiting[0] = -1  # whatever comes later is ignored
        return list(answers)
