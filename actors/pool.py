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
import logging
import queue
import sys
import threading
from collections.abc import Callable
from typing import Any

import pykka
from pykka import messages

log = logging.getLogger(__name__)

TURN_MESSAGES = 16  # then the actor goes to the back of the queue: others get a turn meanwhile


class ActorPool:
    """`threads` worker threads, started here, running the turns they are handed in order."""

    def __init__(self, threads: int, name: str = "actors"):
        self._turns: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{n}", daemon=True)
                         for n in range(threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, turn: Callable[[], None]) -> None:
        self._turns.put(turn)

    def _work(self) -> None:
        while (turn := self._turns.get()) is not None:
            try:
                turn()
            except Exception:  # a turn handles its own failures; this keeps the thread alive
                log.exception("an actor's turn failed")

    def shutdown(self) -> None:
        """The threads end once the turns already handed to them are done."""
        for _ in self._threads:
            self._turns.put(None)


class _Inbox:
    """An actor's messages. `put` (any thread) asks the pool for a turn unless one is due."""

    def __init__(self) -> None:
        self._items: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self._turn_due = True  # until the actor starts: its first turn is handed out at start
        self.wake: Callable[[], None] = lambda: None

    def put(self, envelope: Any, /) -> None:
        with self._lock:
            self._items.append(envelope)
            if self._turn_due:
                return
            self._turn_due = True
        self.wake()

    def take(self) -> Any | None:
        """The next message, or None: then the turn ends and the next `put` asks for one."""
        with self._lock:
            if self._items:
                return self._items.popleft()
            self._turn_due = False
            return None

    def get(self) -> Any:
        return self._items.popleft()

    def empty(self) -> bool:
        return not self._items


class PooledActor(pykka.Actor):
    """A pykka actor whose turns run on `pool` (see the module's docstring)."""

    def __init__(self, pool: ActorPool):
        super().__init__()
        self._pool = pool
        self._set_up = False

    @staticmethod
    def _create_actor_inbox() -> _Inbox:
        return _Inbox()

    @staticmethod
    def _create_future() -> pykka.Future[Any]:
        return pykka.ThreadingFuture()

    def _start_actor_loop(self) -> None:
        self.actor_inbox.wake = self._wake
        self._pool.submit(self._turn)

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
        self._pool.submit(self._turn)  # more may wait: after the other actors' turns

    def _refuse_the_rest(self) -> None:
        """A stopped actor's messages get ActorDeadError, as pykka's teardown gives them (a
        message put after this gets a turn that does the same)."""
        while (envelope := self.actor_inbox.take()) is not None:
            if envelope.reply_to is None:
                continue
            if isinstance(envelope.message, messages._ActorStop):
                envelope.reply_to.set(None)
            else:
                dead = pykka.ActorDeadError(f"{self.actor_ref} stopped before handling the message")
                envelope.reply_to.set_exception(exc_info=(pykka.ActorDeadError, dead, None))

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

