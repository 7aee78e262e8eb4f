"""The actors of one site: started on demand per event and role, and rebuilt from the log at start."""

from __future__ import annotations

import logging
import threading

import pykka

from actors.coordinator import CoordinatorActor
from actors.participant import ParticipantActor
from actors.role_actor import Envelope, Reply, Wiring
from domain.messages import Recover

log = logging.getLogger(__name__)


class Actors:
    def __init__(self, wiring: Wiring):
        self.wiring = wiring
        self._lock = threading.Lock()
        self._refs: dict[tuple[str, str], pykka.ActorRef] = {}
        self.logged: set[str] = set()  # events with a participant log at this site

    def _get(self, role: str, event_id: str) -> pykka.ActorRef:
        with self._lock:
            ref = self._refs.get((role, event_id))
            if ref is None or not ref.is_alive():
                actor_class = ParticipantActor if role == "participant" else CoordinatorActor
                ref = actor_class.start(event_id, self.wiring)
                self._refs[(role, event_id)] = ref
            return ref

    def participant(self, event_id: str) -> pykka.ActorRef:
        self.logged.add(event_id)
        return self._get("participant", event_id)

    def coordinator(self, event_id: str) -> pykka.ActorRef:
        return self._get("coordinator", event_id)

    def tell(self, ref: pykka.ActorRef, message, reply: Reply | None = None) -> None:
        try:
            ref.tell(Envelope(message, reply))
        except pykka.ActorDeadError:
            if reply is not None:
                reply(None)

    def recover(self) -> None:
        """Rebuild every role that has a log here and let it resume (ask, resend, abort)."""
        participants, coordinators = self.wiring.store.logged_events()
        self.logged |= participants
        for event_id in sorted(participants):
            self.tell(self.participant(event_id), Recover())
        for event_id in sorted(coordinators):
            self.tell(self.coordinator(event_id), Recover())
        log.info("recovered %d events, %d coordinator logs", len(participants), len(coordinators))

    def stop_all(self) -> None:
        with self._lock:
            refs = list(self._refs.values())
            self._refs.clear()
        for ref in refs:
            try:
                ref.stop(block=False)
            except pykka.ActorDeadError:
                pass
