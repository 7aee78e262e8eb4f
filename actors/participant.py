"""The participant actor of one event at this site: the replica of the event."""

from __future__ import annotations

import time

from actors.role_actor import RoleActor
from domain import participant
from domain.aggregates import PhotoEvent
from domain.messages import Prepare


class ParticipantActor(RoleActor):
    role = "participant"
    aggregate_class = PhotoEvent

    def load_aggregate(self):
        return self.wiring.store.load_event(self.event_id)

    timer_obsolete = staticmethod(participant.timer_obsolete)

    def decide(self, state, message):
        if isinstance(message, Prepare):  # which of the files it names this site lacks (disk I/O)
            message = self.wiring.check_files(message)
        return participant.step(state, message, self.wiring.config, time.time())
