"""The coordinator actor of one event at this site: runs the transactions started here.

A client that begins a transaction waits for its `Finished`; that wait is the only thing here
that is not in the pure step, because it is a connection, not protocol state.
"""

from __future__ import annotations

import time

from actors.role_actor import Envelope, RoleActor
from domain import coordinator
from domain.aggregates import Coordination
from domain.messages import Begin


class CoordinatorActor(RoleActor):
    role = "coordinator"
    aggregate_class = Coordination

    def on_start(self) -> None:
        self.waiting = {}
        super().on_start()

    def keeps_memory(self) -> bool:
        """Clients waiting, or votes of a transaction still preparing, live only here."""
        return bool(self.waiting) or any(t.phase == coordinator.PREPARING for t in self.state.txns.values())

    def load_aggregate(self):
        return self.wiring.store.load_coordination(self.event_id)

    timer_obsolete = staticmethod(coordinator.timer_obsolete)
    recalled = staticmethod(coordinator.recalled)

    def decide(self, state, message):
        return coordinator.step(state, message, self.wiring.config, time.time())

    def before_store(self, step) -> None:
        if step.finished_first:
            self._answer(step.finished)

    def after_step(self, step, envelope: Envelope) -> None:
        if isinstance(envelope.message, Begin):
            if envelope.reply is not None:
                self.waiting[envelope.message.txn_id] = envelope.reply
        elif envelope.reply is not None:
            envelope.reply(step.reply)
        self._answer(step.finished)

    def _answer(self, finished) -> None:
        """Each client waiting for one of these transactions hears its outcome (once)."""
        for answer in finished:
            reply = self.waiting.pop(answer.txn_id, None)
            if reply is not None:
                reply(answer)
