"""Votes, and the rounds the first accept starts: the voting use cases of one site.

A person's votes are stored at one site, their ballot site (domain.admission.ballot_site): a
vote cast anywhere else is forwarded there and answered from there, so nobody holds two ballots
in a round. If the ballot site cannot be asked, the voter hears 503 and nothing was stored.
The first accept of an open event asks the event's home site for a round that opens with it (a
two-phase commit that freezes the event everywhere and records that accept); web.round_start
settles that request at the ballot site.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from actors.registry import PARTICIPANT
from domain.admission import CONFLICT, ballot_site, starts_round
from domain.errors import (
    Busy,
    EventPublished,
    InvalidRequest,
    OutcomeUnknown,
    PhotoSessionError,
    SiteUnreachable,
    StorageUnavailable,
    SupersededMontage,
)
from domain.messages import (
    ACCEPT,
    REJECT,
    Ballot,
    CastVote,
    RoundAnswer,
    RoundRequest,
    StartRound,
    VoteAnswer,
    VoteReply,
    VoteRequest,
)
from web.errors import error_for_reason
from web.round_start import RoundStart
from web.service import SiteService, back_off


class Voting:
    def __init__(self, service: SiteService):
        self.service = service  # its reads of events, its transactions and its transport
        self.settings = service.settings
        self._starting: dict[str, asyncio.Task] = {}  # round requests being served (home site)
        self._forwarded: dict[tuple, asyncio.Task] = {}  # votes being served for other sites

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
            finished = await self.service.run_transaction(event_id, payload, first=state.home_site)
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
        at = time.time()
        site = ballot_site(state, user_id)
        if site is None or site == self.service.site:
            return await self._vote_here(state, user_id, version, decision, at)
        return await self._forward(site, VoteRequest(event_id, user_id, version, decision, at))

    async def serve_forwarded(self, request: VoteRequest) -> VoteReply:
        """At the ballot site: a vote cast elsewhere. A copy (the same `at`) shares the first
        one's work and answer."""
        key = (request.event_id, request.user, request.at)
        task = self._forwarded.get(key)
        if task is None:
            task = asyncio.ensure_future(self._serve_forwarded(request))
            self._forwarded[key] = task
            task.add_done_callback(lambda done: self._forwarded.pop(key, None))
        return await asyncio.shield(task)

    async def _serve_forwarded(self, request: VoteRequest) -> VoteReply:
        try:
            state = await self.service.event_state(request.event_id)
            answer = await self._vote_here(state, request.user, request.version, request.decision,
                                           request.at)
        except PhotoSessionError as e:
            return VoteReply(request.event_id, None, None, e.code, e.message)
        return VoteReply(request.event_id, answer.round, answer.deadline)

    async def _forward(self, site: int, request: VoteRequest) -> VoteAnswer:
        """Ask the ballot site, again while it cannot be reached and time allows (a copy is
        harmless). 503 when it never took the request; 504 when it may have and never said."""
        p = self.settings.protocol
        # The ballot site may have to start the round first: a round request, then its commit.
        timeout = self.service.budget_s + p.prepare_timeout_s + p.ack_wait_s + 2
        began = time.monotonic()
        end = began + self.service.budget_s
        maybe_delivered = False
        while True:
            try:
                reply = await self.service.transport.post(site, request, timeout=timeout)
                break
            except aiohttp.ClientConnectorError:
                pass  # never connected: it did not get this copy
            except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError, OSError):
                maybe_delivered = True
            now = time.monotonic()
            if now >= end or (not maybe_delivered and now >= began + FORWARD_PATIENCE_S):
                if maybe_delivered:
                    raise OutcomeUnknown(UNCONFIRMED.format(site=site))
                raise SiteUnreachable(UNREACHABLE.format(site=site))
            await asyncio.sleep(FORWARD_RETRY_S)
        if reply.error:
            error = error_for_reason(reply.error)
            raise type(error)(reply.message) if reply.message else error
        return VoteAnswer(reply.round, reply.deadline)

    async def _vote_here(self, state, user_id: str, version: int, decision: str, at: float) -> VoteAnswer:
        """At the person's ballot site (or for someone without one: not a submitter)."""
        event_id = state.event_id
        if starts_round(state, user_id, decision, at):
            if version != state.version:
                raise SupersededMontage()
            problem = self.service.store.health.problem
            if problem is not None:  # a request could not be withdrawn here: send none
                raise StorageUnavailable(f"This site cannot store your vote right now ({problem}); "
                                         "nothing was changed.")
            ballot = Ballot(user_id, ACCEPT, at, self.service.site)
            start = await RoundStart(self.service, state, version, ballot).settle()
            if start is not None:  # this accept opened the round: the commit recorded it
                return VoteAnswer(start.round, start.deadline)
        vote = CastVote(event_id, user_id, version, decision, at)
        answer = await self.service.ask(PARTICIPANT, event_id, vote)
        if answer.error:
            raise error_for_reason(answer.error)
        return answer


# How long a ballot site that refuses connections is asked again before the voter hears 503
# (a restart takes a few seconds); one that may have taken the vote is asked for the whole budget.
FORWARD_PATIENCE_S = 3.0
FORWARD_RETRY_S = 0.2
UNREACHABLE = ("Your votes in this event are kept by site {site}, which cannot be reached right now, "
               "so your vote was not recorded. Try again in a minute.")
UNCONFIRMED = ("Your votes in this event are kept by site {site}, which did not confirm whether it "
               "recorded this one; reload the event to see.")
