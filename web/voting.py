"""Votes, and the rounds the first accept starts: the voting use cases of one site.

A vote is stored at the site where it is cast. The first accept of an open event asks the
event's home site for a round that opens with it (a two-phase commit that freezes the event
everywhere and records that accept); web.round_start settles that request at the voter's site.
"""

from __future__ import annotations

import asyncio
import time

from actors.registry import PARTICIPANT
from domain.admission import CONFLICT, starts_round
from domain.errors import Busy, EventPublished, InvalidRequest, StorageUnavailable, SupersededMontage
from domain.messages import ACCEPT, REJECT, Ballot, CastVote, RoundAnswer, RoundRequest, StartRound, VoteAnswer
from web.errors import error_for_reason
from web.round_start import RoundStart
from web.service import SiteService, back_off


class Voting:
    def __init__(self, service: SiteService):
        self.service = service  # its reads of events, its transactions and its transport
        self.settings = service.settings
        self._starting: dict[str, asyncio.Task] = {}  # round requests being served (home site)

    async def start_round(self, request: RoundRequest) -> RoundAnswer:
        """At the home site: freeze the event at the request's version everywhere and open a
        round with its ballot. Idempotent by request id: a copy gets the same answer."""
        task = self._starting.get(request.request)
        if task is None:
            task = asyncio.ensure_future(self._start_round(request))
            self._starting[request.request] = task
            task.add_done_callback(lambda done: self._served(request.request, done))
        return await asyncio.shield(task)

    def _served(self, request_id: str, task: asyncio.Task) -> None:
        """Forget a request once served. Its answer may have no taker left (the asker gave up
        waiting, which is its right): the outcome is read here, so it is not reported lost."""
        self._starting.pop(request_id, None)
        if not task.cancelled():
            task.exception()

    async def _start_round(self, request: RoundRequest) -> RoundAnswer:
        event_id, version = request.event_id, request.version
        for attempt in range(self.settings.protocol.upload_attempts):
            state = await self.service.event_state(event_id)
            if request.request in state.started:
                start = state.started[request.request]
                return RoundAnswer(event_id, start.round, start.deadline, mine=True)
            if state.round is not None and state.round.version == version:
                return RoundAnswer(event_id, state.round.round, state.round.deadline)
            if state.published:
                raise EventPublished()
            if state.round is not None or state.version != version:
                raise SupersededMontage()
            deadline = time.time() + self.settings.voting_period_s
            payload = StartRound(state.rounds + 1, version, deadline, state.submitters,
                                 request.request, request.ballot)
            finished = await self.service.run_transaction(event_id, payload)
            if finished.commit:
                return RoundAnswer(event_id, payload.round, deadline, mine=True, txn_id=finished.txn_id)
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
            problem = self.service.store.health.problem
            if problem is not None:  # a request could not be withdrawn here: send none
                raise StorageUnavailable(f"This site cannot store your vote right now ({problem}); "
                                         "nothing was changed.")
            ballot = Ballot(user_id, ACCEPT, time.time(), self.service.site)
            start = await RoundStart(self.service, state, version, ballot).settle()
            if start is not None:  # this accept opened the round: the commit recorded it
                return VoteAnswer(start.round, start.deadline)
        vote = CastVote(event_id, user_id, version, decision, time.time())
        answer = await self.service.ask(PARTICIPANT, event_id, vote)
        if answer.error:
            raise error_for_reason(answer.error)
        return answer
