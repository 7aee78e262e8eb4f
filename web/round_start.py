"""The round a first accept asks for, settled at the voter's site so that its answer is true.

The accept asks the event's home site to start a round that opens with it (a RoundRequest named
by a request id made here). The home site's answer may be lost, late or a refusal, and a copy of
the request may still be on its way, so the answer alone proves nothing. This site settles it:

- the round started with this accept: this site holds it, and the commit that opened it
  recorded the accept; the voter hears 200;
- otherwise this site withdraws the request (a stored record: its StartRound is refused here
  from now on, and every site must vote yes for it to commit), and only then says why no round
  started, or lets the voter vote in a round already running on that version;
- the answer is indefinite (504) only when the request's StartRound is still prepared here and
  undecided a prepare timeout past the budget: then nobody can say yet.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import aiohttp

from actors.registry import PARTICIPANT
from domain.errors import (
    EventPublished,
    OutcomeUnknown,
    PhotoSessionError,
    SiteUnreachable,
    SupersededMontage,
)
from domain.event_state import EventState
from domain.messages import (
    IN_DOUBT,
    WITHDRAWN,
    Ballot,
    Outcome,
    RoundAnswer,
    RoundRequest,
    StartRound,
    Withdraw,
)
from web.errors import error_for_reason

POLL_S = 0.05  # how often the voter's site looks again while a decision is on its way
RETRY_S = 0.2  # before asking the home site again after a lost or refused request
NOT_IN_TIME = "The event's home site did not start the vote in time; your vote was not recorded."
UNDECIDED = ("This site could not learn in time whether your accept started the vote; reload the "
             "event to see.")


class RoundStart:
    def __init__(self, service, state: EventState, version: int, ballot: Ballot):
        self.service = service
        self.settings = service.settings
        self.event_id = state.event_id
        self.home = state.home_site
        self.version = version
        self.ballot = ballot
        self.request = f"{service.site}-{uuid.uuid4().hex}"
        self.refusal: PhotoSessionError | None = None  # the home site's definite answer
        self.joined = False  # the home site answered with a round it runs for another accept
        self.withdrawn = False

    async def settle(self) -> StartRound | None:
        """The round this accept started (its ballot is in it), or None when another accept's
        round runs on the version here and the voter should vote in it; raises otherwise."""
        end = time.monotonic() + self.service.budget_s
        # Prepared here, the request's StartRound is decided within a prepare timeout of its
        # start at the home site, and the decision then travels: worth waiting for past the
        # budget, rather than answer 504.
        in_doubt_end = end + self.settings.protocol.prepare_timeout_s + self.settings.protocol.ack_wait_s
        while True:
            state = await self.service.event_state(self.event_id)
            if self.request in state.started:
                return state.started[self.request]
            over = time.monotonic() >= end
            if not self.withdrawn:
                if self.refusal or self.joined or over or not self._may_start(state):
                    await self._withdraw(time.monotonic() >= in_doubt_end)
                else:
                    await self._ask_home(end)
                continue
            if state.round is not None and state.round.version == self.version:
                return None
            if self.joined and not over:
                await asyncio.sleep(POLL_S)  # the round's commit is on its way here
                continue
            raise self.refusal or _why_not(state, self.version)

    def _may_start(self, state: EventState) -> bool:
        return state.round is None and not state.published and state.version == self.version

    async def _withdraw(self, over: bool) -> None:
        try:
            verdict = await self.service.ask(PARTICIPANT, self.event_id,
                                             Withdraw(self.event_id, self.request))
        except PhotoSessionError:  # not stored: nothing is settled yet
            verdict = IN_DOUBT
        if verdict == WITHDRAWN:
            self.withdrawn = True
        elif verdict == IN_DOUBT:
            if over:
                raise OutcomeUnknown(UNDECIDED)
            await asyncio.sleep(POLL_S)  # prepared here: its decision is on its way
        # STARTED: the next look at the event finds the round

    async def _ask_home(self, end: float) -> None:
        request = RoundRequest(self.event_id, self.version, self.request, self.ballot)
        try:
            answer = await asyncio.wait_for(self._request(request), max(0.1, end - time.monotonic()))
        except OutcomeUnknown:
            answer = None
        except PhotoSessionError as e:  # the home site is this site, and it refused
            self.refusal = e
            return
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            answer = None  # it may have got there: a copy of it is harmless
        if answer is None or answer.error == OutcomeUnknown.code:
            await asyncio.sleep(RETRY_S)
        elif answer.error:
            self.refusal = error_for_reason(answer.error)
        elif not answer.mine:
            self.joined = True
        elif answer.txn_id:  # tell this site's participant at once, rather than wait for it
            await self.service.ask(PARTICIPANT, self.event_id,
                                   Outcome(answer.txn_id, self.event_id, self.home, True))
        else:
            await asyncio.sleep(POLL_S)

    async def _request(self, request: RoundRequest) -> RoundAnswer:
        if self.home == self.service.site:
            return await self.service.voting.start_round(request)
        return await self.service.transport.post(self.home, request)


def _why_not(state: EventState, version: int) -> PhotoSessionError:
    if state.published:
        return EventPublished()
    if state.version != version:
        return SupersededMontage()
    return SiteUnreachable(NOT_IN_TIME)
