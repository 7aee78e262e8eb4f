"""The latest stored state of recently used events, so that reads need no actor.

Participants report every stored change (and what they loaded at start) with the number of
records the state is built from; a view built from fewer records never replaces a newer one,
so a read of the store that raced a change cannot bring an older state back. Only the site's
event loop touches it. The least recently used views go once there are more than `capacity`.
"""

from __future__ import annotations

from collections import OrderedDict

from domain.event_state import EventState


class EventViews:
    def __init__(self, capacity: int):
        self.capacity = capacity
        self._views: OrderedDict[str, tuple[int, EventState]] = OrderedDict()

    def get(self, event_id: str) -> EventState | None:
        entry = self._views.get(event_id)
        if entry is None:
            return None
        self._views.move_to_end(event_id)
        return entry[1]

    def offer(self, state: EventState, seq: int) -> EventState:
        """Keep `state` unless a view built from more records is known; returns the newest."""
        known = self._views.get(state.event_id)
        if known is not None and known[0] > seq:
            self._views.move_to_end(state.event_id)
            return known[1]
        self._views[state.event_id] = (seq, state)
        self._views.move_to_end(state.event_id)
        while len(self._views) > self.capacity:
            self._views.popitem(last=False)
        return state

    def __len__(self) -> int:
        return len(self._views)
