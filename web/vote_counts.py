"""The event-wide count of a round, as far as this site knows it.

A person's vote is stored at their ballot site only; the home site counts the reports and
relays its count to every site (CountRelay, best effort, kept in memory here). A page shows the
votes stored here together with those relayed, each person once: a relay can only add people
this site has no vote of, so nothing is counted twice. The authoritative count is always the
collection's (domain.round_master).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace

from domain.event_state import EventState
from domain.messages import CountRelay

KEPT = 10_000  # events whose relayed count is kept; the least recently relayed go first


class RelayedCounts:
    def __init__(self):
        self._latest: OrderedDict[str, CountRelay] = OrderedDict()

    def offer(self, relay: CountRelay) -> bool:
        """Keep `relay` unless an older round's; True if it tells something new."""
        known = self._latest.get(relay.event_id)
        if known is not None and (known.round > relay.round or known == relay):
            return False
        if known is not None and known.round == relay.round and len(relay.ballots) < len(known.ballots):
            return False  # relays may arrive out of order: a count only grows within a round
        self._latest[relay.event_id] = relay
        self._latest.move_to_end(relay.event_id)
        while len(self._latest) > KEPT:
            self._latest.popitem(last=False)
        return True

    def merged(self, state: EventState) -> EventState:
        """`state` with the round's relayed votes added to those stored here."""
        current, relay = state.round, self._latest.get(state.event_id)
        if current is None or relay is None or relay.round != current.round:
            return state
        heard = {b.user: b for b in relay.ballots if b.user not in current.ballots}
        if not heard:
            return state
        return replace(state, round=replace(current, ballots={**current.ballots, **heard}))
