"""The actors of one site: started on demand per (role, event), stopped when idle, and resumed
from the log at start.

Every message to an actor goes through `deliver`, which starts the actor if it is not running.
An actor is a thread, so with thousands of events only the busy ones may run: a sweeper stops
actors that have been idle for a while and hold nothing that only memory has (a participant
never does; a coordinator does while it prepares or a client waits). Their timers and replies
still arrive, through `deliver`, to a fresh actor rebuilt from the store.
"""

from __future__ import annotations

import logging
import threading
import time

import pykka

from actors.coordinator import CoordinatorActor
from actors.participant import ParticipantActor
from actors.role_actor import Envelope, IdleCheck, Reply, Wiring
from domain.messages import Recover

log = logging.getLogger(__name__)

PARTICIPANT, COORDINATOR = "participant", "coordinator"
ROLES = {PARTICIPANT: ParticipantActor, COORDINATOR: CoordinatorActor}


class Actors:
    def __init__(self, wiring: Wiring, idle_s: float = 10.0):
        self.wiring = wiring
        self.idle_s = idle_s
        self._lock = threading.Lock()
        self._refs: dict[tuple[str, str], pykka.ActorRef] = {}
        self._last_used: dict[tuple[str, str], float] = {}
        self._stopping = threading.Event()
        self.logged: set[str] = set()  # events with a participant log at this site

    def deliver(self, role: str, event_id: str, message, reply: Reply | None = None) -> None:
        """Hand `message` to the actor of (role, event), starting it from the store if needed."""
        key = (role, event_id)
        if role == PARTICIPANT:
            self.logged.add(event_id)
        with self._lock:
            ref = self._refs.get(key)
            if ref is None or not ref.is_alive():
                ref = ROLES[role].start(event_id, self.wiring, self.mailbox(role, event_id))
                self._refs[key] = ref
            self._last_used[key] = time.monotonic()
            try:
                ref.tell(Envelope(message, reply))
                return
            except pykka.ActorDeadError:
                pass
        if reply is not None:
            reply(None)

    def mailbox(self, role: str, event_id: str) -> Reply:
        """Where an actor's replies and timers go: to whichever actor then plays that role."""
        def post(message) -> None:
            if message is not None and not self._stopping.is_set():
                self.deliver(role, event_id, message)

        return post

    @property
    def running(self) -> int:
        return len(self._refs)

    def recover(self, work) -> None:
        """Resume what the log says needs it (a scan by the store): ask, resend, abort, wait."""
        participants, coordinators, logged = work
        self.logged |= logged
        for event_id in sorted(participants):
            self.deliver(PARTICIPANT, event_id, Recover())
        for event_id in sorted(coordinators):
            self.deliver(COORDINATOR, event_id, Recover())
        log.info("%d events here; resumed %d participants and %d coordinators",
                 len(logged), len(participants), len(coordinators))

    # --- stopping idle actors ----------------------------------------------------------------------
    def start_sweeping(self, every_s: float = 2.0) -> None:
        def loop() -> None:
            while not self._stopping.wait(every_s):
                self.sweep()

        threading.Thread(target=loop, name="actor-sweeper", daemon=True).start()

    def sweep(self) -> int:
        """Stop idle actors that keep nothing in memory; returns how many were stopped."""
        now = time.monotonic()
        idle = [k for k, t in list(self._last_used.items()) if now - t > self.idle_s]
        stopped = 0
        for key in idle:
            # Under the lock no message can reach the actor: it answers IdleCheck after
            # everything already in its inbox, and stops with nothing behind it.
            with self._lock:
                ref = self._refs.get(key)
                if ref is None or time.monotonic() - self._last_used.get(key, now) <= self.idle_s:
                    continue
                if not _ask(ref, IdleCheck()):
                    continue
                try:
                    ref.stop(block=True, timeout=5)
                except (pykka.ActorDeadError, pykka.Timeout):
                    pass
                self._refs.pop(key, None)
                self._last_used.pop(key, None)
                stopped += 1
        return stopped

    def stop_all(self) -> None:
        self._stopping.set()
        with self._lock:
            refs = list(self._refs.values())
            self._refs.clear()
        for ref in refs:
            try:
                ref.stop(block=False)
            except pykka.ActorDeadError:
                pass


def _ask(ref: pykka.ActorRef, message, timeout: float = 2.0):
    done = threading.Event()
    answer = []

    def reply(value) -> None:
        answer.append(value)
        done.set()

    try:
        ref.tell(Envelope(message, reply))
    except pykka.ActorDeadError:
        return None
    return answer[0] if done.wait(timeout) else None
