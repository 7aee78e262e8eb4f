"""The participant actor of one event at this site: the replica of the event."""

from __future__ import annotations

import time

from actors.role_actor import RoleActor
from domain import participant
from domain.aggregates import PhotoEvent


class ParticipantActor(RoleActor):
    role = "participant"
    aggregate_class = PhotoEvent

    def load_aggregate(self):
        return self.wiring.store.load_event(self.event_id)

    timer_obsolete = staticmethod(participant.timer_obsolete)

    def decide(self, state, message):
        return participant.step(state, message, self.wiring.config, time.time())
