"""pykka actors that take turns on a few pooled threads instead of a thread each.

pykka's ThreadingActor starts a thread with every actor and ends it when the actor stops. A site
starts an actor per event and role (~5 per create across the sites), so every transaction paid
for threads started and stopped. A `PooledActor` is still a pykka actor (its ref, the registry,
tell, ask, stop and the on_* hooks are pykka's); only its loop differs: while its inbox holds
messages, one of the pool's threads gives it a turn, handling them in order. An actor has at
most one turn at a time, so it still handles one message at a time, as on a thread of its own.

Actors must not block on each other (they never do here: they tell, and replies come back as
messages), since a pool thread waiting for an actor would hold a turn another actor needs.
"""

from __future__ import annotations

import collections
import itertools
import logging
import queue
import sys
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pykka
from pykka import messages

log = logging.getLogger(__name__)

TURN_MESSAGES = 16  # then the actor goes to the back of the queue: others get a turn meanwhile
FLUSH_EVERY = 32  # turns in a row after which a thread stores what they queued (see ActorPool)


class ActorPool:
    """`threads` worker threads, started here, running the turns they are handed in order.

    `flush` (a store's, set before any turn runs) writes what the turns queued to be stored: a
    thread calls it when it finds no turn waiting, or after FLUSH_EVERY turns in a row, so the
    saves of every actor that ran meanwhile share one forced write (group commit with no
    thread waiting for another), and none waits longer than FLUSH_EVERY turns. The flush goes
    on with each stored actor's turn in the same thread (no hand-off)."""

    def __init__(self, threads: int, name: str = "actors"):
        self._turns: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self.flush: Callable[[], bool] | None = None
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{n}", daemon=True)
                         for n in range(threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, turn: Callable[[], None]) -> None:
        self._turns.put(turn)

    def _work(self) -> None:
        turns, since_flush = self._turns, 0
        while True:
            try:
                turn = turns.get_nowait()
            except queue.Empty:
                if self._flush():  # what was stored has resumed its actors: their turns wait
                    since_flush = 0
                    continue
                turn = turns.get()
            if turn is None:
                if self._flush():  # the actors it resumes finish before this thread ends
                    turns.put(None)
                    continue
                return
            try:
                turn()
            except Exception:  # a turn handles its own failures; this keeps the thread alive
                log.exception("an actor's turn failed")
            turn = None  # not held while this thread waits: a stopped actor is freed at once
            since_flush += 1
            if since_flush >= FLUSH_EVERY:
                since_flush = 0
                self._flush()

    def _flush(self) -> bool:
        if self.flush is None:
            return False
        try:
            return self.flush()
        except Exception:  # a flush reports failures to the savers; this keeps the thread alive
            log.exception("storing the actors' records failed")
            return False

    def shutdown(self) -> None:
        """The threads end once the turns already handed to them are done."""
        for _ in self._threads:
            self._turns.put(None)


BUSY = object()  # _Inbox.retire_if_idle: the actor has a turn running or due, or messages waiting


class _Inbox:
    """An actor's messages. `put` (any thread) asks the pool for a turn unless one is due.

    `wake` and `owner` (the actor's) are the one reference cycle an actor has: its inbox wakes
    it. Once the actor has stopped, `close` lets go of it, so a retired actor is freed as soon as
    nothing uses it, by reference counting, not by the garbage collector's full passes (which its
    ~18 objects, five actors per create, would otherwise keep busy); what comes after is refused."""

    def __init__(self) -> None:
        self._items: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self._turn_due = True  # until the actor starts: its first turn is handed out at start
        self.wake: Callable[[], None] = _asleep
        self.owner: PooledActor | None = None  # the actor, from its start until it stops
        self._closed: str | None = None  # the stopped actor, once closed

    def put(self, envelope: Any, /) -> None:
        with self._lock:
            closed = self._closed
            if closed is None:
                self._items.append(envelope)
                if self._turn_due:
                    return
                self._turn_due = True
                wake = self.wake
        if closed is not None:
            _refuse(envelope, closed)
        else:
            wake()

    def take(self) -> Any | None:
        """The next message, or None: then the turn ends and the next `put` asks for one."""
        with self._lock:
            if self._items:
                return self._items.popleft()
            self._turn_due = False
            return None

    def close(self, actor: str) -> None:
        """The actor stopped: refuse what waits and whatever comes, and let go of the actor."""
        with self._lock:
            self._closed, self.wake, self.owner = actor, _asleep, None
            rest, self._items = self._items, collections.deque()
        for envelope in rest:
            _refuse(envelope, actor)

    def retire_if_idle(self) -> Any:
        """From any thread (the registry's retiring): if the actor has no turn running or due and
        no message waiting, ask it, in place of a turn, what it leaves if it stops now
        (`PooledActor.leaving`, called under this inbox's lock, so no turn can begin meanwhile).
        None: it stays. Anything else is taken: the inbox closes and the actor stops here and
        then (pykka's teardown, as in a turn). BUSY when it was not idle: ask it in a turn."""
        with self._lock:
            owner = self.owner
            if owner is None or self._items or self._turn_due or self._closed is not None:
                return BUSY
            left = owner.leaving()
            if left is None:
                return None
            self._closed, self.wake, self.owner = str(owner.actor_ref), _asleep, None
        owner._stop()
        return left

    def get(self) -> Any:
        return self._items.popleft()

    def empty(self) -> bool:
        return not self._items


def _asleep() -> None:
    """The wake of an inbox whose actor has not started, or has stopped."""


def _refuse(envelope, actor: str) -> None:
    """A stopped actor's message gets ActorDeadError, as pykka's teardown gives it (a stop
    gets its answer: the actor is stopped)."""
    if envelope.reply_to is None:
        return
    if isinstance(envelope.message, messages._ActorStop):
        envelope.reply_to.set(None)
    else:
        dead = pykka.ActorDeadError(f"{actor} stopped before handling the message")
        envelope.reply_to.set_exception(exc_info=(pykka.ActorDeadError, dead, None))


class _Stopped:
    """An actor's `actor_stopped`, as pykka's threading.Event is used (set once, read often),
    without the Condition and lock an Event builds at once: `wait`, which no actor of ours calls,
    makes a real Event on first use."""

    __slots__ = ("_set", "_event")
    _making = threading.Lock()

    def __init__(self) -> None:
        self._set = False
        self._event: threading.Event | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        with self._making:
            event = self._event
        if event is not None:
            event.set()

    def wait(self, timeout: float | None = None) -> bool:
        with self._making:
            if self._event is None:
                self._event = threading.Event()
                if self._set:
                    self._event.set()
            event = self._event
        return event.wait(timeout)


_URN_PREFIX = f"urn:uuid:{uuid.uuid4()}:"  # unique per process; each actor adds a number
_urn_numbers = itertools.count(1)


class PooledActor(pykka.Actor):
    """A pykka actor whose turns run on `pool` (see the module's docstring)."""

    def __init__(self, pool: ActorPool):
        # What pykka.Actor.__init__ sets, made cheaper: a numbered URN (not a fresh uuid4 and its
        # text) and a stop flag without a Condition. A site starts ~5 actors per create; these
        # two were ~2/3 of an actor's start (tests/unit/test_pooled_actor.py checks the
        # fields against pykka's).
        self.actor_urn = f"{_URN_PREFIX}{next(_urn_numbers)}"
        self.actor_inbox = self._create_actor_inbox()
        self.actor_stopped = _Stopped()
        self._actor_ref = pykka.ActorRef(self)
        self._pool = pool
        self._set_up = False
        self._waiting = None  # set by `suspend` while a message is handled, taken as its turn ends

    @staticmethod
    def _create_actor_inbox() -> _Inbox:
        return _Inbox()

    @staticmethod
    def _create_future() -> pykka.Future[Any]:
        return pykka.ThreadingFuture()

    def _start_actor_loop(self) -> None:
        self.actor_inbox.wake, self.actor_inbox.owner = self._wake, self
        self._pool.submit(self._turn)

    def leaving(self) -> Any:
        """What this actor leaves if it stops now, or None while it may not (by default it
        never stops that way). Called with no turn of it running (`_Inbox.retire_if_idle`)."""
        return None

    def _wake(self) -> None:
        self._pool.submit(self._turn)

    def _turn(self) -> None:
        if not self._set_up:
            self._set_up = True
            self._actor_loop_setup()  # on_start, in a pool thread as in its own thread
        for _ in range(TURN_MESSAGES):
            if self.actor_stopped.is_set():
                self._refuse_the_rest()
                return
            envelope = self.actor_inbox.take()
            if envelope is None:
                return
            self._handle(envelope)
            if self._waiting is not None:
                self._wait()
                return
        self._pool.submit(self._turn)  # more may wait: after the other actors' turns

    def suspend(self, wait: Callable[[Callable[[Callable[[], None]], None]], None]) -> None:
        """Called while handling a message whose rest must wait (for its records to be stored):
        once the handling returns, the turn ends with `wait(resume)` (so whatever `wait` starts
        finds the actor at rest), and the actor takes no other message until `resume(rest)` is
        called, from a pool thread outside any turn (the pool's flush): `rest` runs there, and
        the actor's turn goes on."""
        self._waiting = wait

    def _wait(self) -> None:
        wait, self._waiting = self._waiting, None
        wait(self._resumed)  # the last thing the turn does: a resume may come at once

    def _resumed(self, rest: Callable[[], None]) -> None:
        """The actor's turn goes on in the thread that resumes it (a pool thread's flush)."""
        try:
            rest()
        except Exception:  # `rest` handles its own failures, as on_receive does
            log.exception("%s failed after its records were stored", self)
        if self._waiting is not None:
            self._wait()
        else:
            self._turn()

    def _refuse_the_rest(self) -> None:
        """A stopped actor's messages get ActorDeadError, as pykka's teardown gives them, and
        so does any put after this; its inbox lets go of it (_Inbox.close)."""
        self.actor_inbox.close(str(self.actor_ref))

    def _handle(self, envelope) -> None:
        """One message, as pykka's ThreadingActor handles it in its loop."""
        try:
            response = self._handle_receive(envelope.message)
            if envelope.reply_to is not None:
                envelope.reply_to.set(response)
        except Exception:
            if envelope.reply_to is not None:
                envelope.reply_to.set_exception()
            else:
                self._handle_failure(*sys.exc_info())
                try:
                    self.on_failure(*sys.exc_info())
                except Exception:
                    self._handle_failure(*sys.exc_info())
        except BaseException:  # as pykka does; without blocking a pool thread on the others
            self._stop()
            pykka.ActorRegistry.stop_all(block=False)

