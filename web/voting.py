"""Votes, and the rounds the first accept starts: the voting use cases of one site.

A vote is stored at the site where it is cast. The first accept of an open event first has the
event's home site start a round (a two-phase commit that freezes the event everywhere), and the
vote counts once this site holds that round.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from actors.registry import PARTICIPANT
from domain.admission import CONFLICT, starts_round
from domain.errors import (
    Busy,
    EventPublished,
    InvalidRequest,
    OutcomeUnknown,
    SiteUnreachable,
    SupersededMontage,
)
from domain.event_state import EventState
from domain.messages import ACCEPT, REJECT, CastVote, RoundAnswer, RoundRequest, StartRound, VoteAnswer
from web.errors import error_for_reason
from web.service import SiteService, back_off


class Voting:
    def __init__(self, service: SiteService):
        self.service = service  # its reads of events, its transactions and its transport
        self.settings = service.settings

    async def start_round(self, event_id: str, version: int) -> RoundAnswer:
        """At the home site: freeze the event at `version` everywhere and open a round."""
        for attempt in range(self.settings.protocol.upload_attempts):
            state = await self.service.event_state(event_id)
            if state.round is not None and state.round.version == version:
                return RoundAnswer(event_id, state.round.round, state.round.deadline)
            if state.published:
                raise EventPublished()
            if state.round is not None or state.version != version:
                raise SupersededMontage()
            deadline = time.time() + self.settings.voting_period_s
            payload = StartRound(state.rounds + 1, version, deadline, state.submitters)
            finished = await self.service.run_transaction(event_id, payload)
            if finished.commit:
                return RoundAnswer(event_id, payload.round, deadline)
            if finished.reason not in (CONFLICT, "voting_in_progress"):
                raise error_for_reason(finished.reason)
            await back_off(attempt)
        raise Busy()

    async def vote(self, event_id: str, user_id: str, version, decision) -> VoteAnswer:
        if decision not in (ACCEPT, REJECT) or not isinstance(version, int) or isinstance(version, bool):
            raise InvalidRequest('Send {"montage_version": <number>, "decision": "accept" | "reject"}.')
        state = await self.service.event_state(event_id)
        if starts_round(state, user_id, decision):
            if version != state.version:
                raise SupersededMontage()
            await self._round_started_at_home(state, version)
        vote = CastVote(event_id, user_id, version, decision, time.time())
        answer = await self.service.ask(PARTICIPANT, event_id, vote)
        if answer.error:
            raise error_for_reason(answer.error)
        return answer

    async def _round_started_at_home(self, state: EventState, version: int) -> None:
        """Have the home site start a round on `version`; return once this site holds it."""
        protocol = self.settings.protocol
        if state.home_site == self.service.site:
            await self.start_round(state.event_id, version)
            await self._local_round(state.event_id, version, protocol.ack_wait_s + 2)
            return
        reached = False
        for attempt in range(3):  # the request is idempotent at the home site
            try:
                answer = await self.service.transport.post(state.home_site, RoundRequest(state.event_id, version))
            except aiohttp.ClientConnectorError:
                pass  # refused: it never got there
            except Exception:
                reached = True  # sent, but the answer was lost or late: it may have started
            else:
                if answer.error:
                    raise error_for_reason(answer.error)
                reached = True
            # This site takes part in the round start, so it hears of a round that started.
            wait = protocol.ack_wait_s + (protocol.prepare_timeout_s if reached else 0)
            if await self._local_round(state.event_id, version, wait):
                return
        if reached:
            raise OutcomeUnknown("The vote may have started; reload the event and vote again if it did.")
        raise SiteUnreachable("The event's home site could not be reached to start the vote.")

    async def _local_round(self, event_id: str, version: int, wait_s: float) -> bool:
        """Whether this site holds a round on `version`, waiting up to wait_s for one."""
        deadline = time.monotonic() + wait_s
        while True:
            current = (await self.service.event_state(event_id)).round
            if current is not None and current.version == version:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)
