"""The use cases of one site: one method each, called by thin HTTP handlers (votes and the
rounds they start are in web.voting, uploads in web.uploading).

It bridges asyncio and the actors (a reply callback resolves a future on the loop; nothing here
blocks the loop on an actor) and turns transaction outcomes into answers or errors.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from datetime import datetime, timezone

from actors.registry import COORDINATOR, PARTICIPANT, Actors
from actors.role_actor import Failed, Snapshot
from domain.errors import (
    OutcomeUnknown,
    PhotoSessionError,
    SiteUnreachable,
    StorageUnavailable,
    UnknownEvent,
)
from domain.event_state import EventState
from domain.messages import (
    AddPhotos,
    Begin,
    CheckedPrepare,
    CreateEvent,
    Decision,
    Prepare,
    CountRelay,
    Query,
    RoundAnswer,
    RoundRequest,
    VoteReport,
    VoteRequest,
)
from domain.step import Alarm, Finished
from eventstore.store_trouble import problem_of
from web.peers.blob_shipping import blobs_of
from web.event_views import EventViews
from web.live import Subscribers
from web.titles import clean_title
from web.vote_counts import RelayedCounts

log = logging.getLogger(__name__)


async def back_off(attempt: int) -> None:
    """A randomised, bounded pause before a transaction that conflicted is tried again."""
    await asyncio.sleep(random.uniform(0.005, 0.02 * 2 ** min(attempt, 5)))


def valid_event_id(event_id: str) -> bool:
    try:
        return str(uuid.UUID(event_id)) == event_id
    except ValueError:
        return False


class SiteService:
    def __init__(self, settings, site: int, loop, store, files, montages):
        self.settings = settings
        self.site = site
        self.loop = loop
        self.store = store
        self.files = files
        self.montages = montages  # web.montages.Montages
        self.actors: Actors | None = None  # wired by web.site once the transport exists
        self.transport = None
        self.shipper = None  # web.peers.blob_shipping.BlobShipper, wired by web.site
        self.subscribers = Subscribers()  # live readers of events (server-sent events)
        self.voting = None  # web.voting.Voting, wired by web.site
        self.uploads = None  # web.uploading.Uploads, wired by web.site
        self.views = EventViews(settings.capacity.cached_events)  # reads without actors
        self.counts = RelayedCounts()  # what the home sites relayed of their rounds' votes
        self.reachability = None  # web.peers.reachability.Reachability, wired by web.site
        self.existing: set[str] = set()  # events that exist here (committed creation)
        self.in_doubt: dict[str, str] = {}  # event -> transaction prepared here, undecided
        self.alarms: dict[tuple[str, str], Alarm] = {}  # (event, txn) -> what must never happen
        self._probing: asyncio.Future | None = None  # a probe of the failing store, under way
        # fn(*args) on the loop, from any thread (web.site hands it web.loop_calls.LoopCalls.call)
        self.call_on_loop = loop.call_soon_threadsafe

    # --- what the actors report -----------------------------------------------------------------
    def on_change(self, event_id: str, role: str, state, seq: int) -> None:
        """Called from an actor's thread after it stored something (or loaded it at start)."""
        if role == "participant":
            self.call_on_loop(self._participant_changed, state, seq)

    def on_alarm(self, alarm: Alarm) -> None:
        """Called from an actor's thread: the alarm shows in the status, logged once."""
        self.call_on_loop(self._raise_alarm, alarm)

    def _raise_alarm(self, alarm: Alarm) -> None:
        key = (alarm.event_id, alarm.txn_id)
        if key not in self.alarms:
            log.error("ALARM event %s transaction %s: %s", alarm.event_id, alarm.txn_id, alarm.problem)
        self.alarms[key] = alarm

    async def storage_status(self) -> dict:
        """{"ok": true} or {"ok": false, "problem": ...}; while failing, a cheap probe (one at a
        time) tells whether the store takes writes again."""
        if not self.store.health.ok:
            if self._probing is None:
                self._probing = self.loop.run_in_executor(None, self.store.probe, self.files.folders())
                self._probing.add_done_callback(self._probe_done)
            await asyncio.shield(self._probing)
        return self.store.health.as_json()

    def _probe_done(self, _future) -> None:
        self._probing = None

    def _participant_changed(self, state: EventState, seq: int) -> None:
        if self.views.offer(state, seq) is not state:
            return  # an older state reported late: the newer one was already handled
        if state.exists:
            self.existing.add(state.event_id)
            self.subscribers.publish(self.counts.merged(state))
        if state.prepared is not None:
            self.in_doubt[state.event_id] = state.prepared.txn_id
        else:
            self.in_doubt.pop(state.event_id, None)
        self.montages.committed(state)

    async def start(self) -> None:
        """Scan the log, resume only what is unfinished; each resumed actor reports its state."""
        scan = await self.loop.run_in_executor(None, self.store.scan)
        self.existing |= scan.existing
        self.actors.recover(scan)
        self.actors.start_sweeping()
        await asyncio.gather(*(self.ask(PARTICIPANT, e, Snapshot()) for e in scan.participants_in_doubt))

    @property
    def budget_s(self) -> float:
        """How long a client's change may take here before its answer is due: a prepare round,
        the acknowledgements, one request, and some slack for a busy machine."""
        p = self.settings.protocol
        return p.prepare_timeout_s + p.ack_wait_s + p.request_timeout_s + 5

    # --- bridging to actors -------------------------------------------------------------------
    async def ask(self, role: str, event_id: str, message, timeout: float = 30.0):
        future = self.loop.create_future()

        def reply(value) -> None:
            self.call_on_loop(_resolve, future, value)

        self.actors.deliver(role, event_id, message, reply)
        result = await asyncio.wait_for(future, timeout)
        if isinstance(result, Failed):
            raise result.as_error()
        return result

    async def run_transaction(self, event_id: str, payload, first: int | None = None) -> Finished:
        """Run a 2PC of the payload over every site; `first`: the site to prepare first, the
        others once it voted yes (domain.coordinator), for a change that may meet another."""
        txn_id = f"{self.site}-{uuid.uuid4().hex}"
        begin = Begin(txn_id, event_id, payload, self.settings.sites, first)
        try:
            return await self.ask(COORDINATOR, event_id, begin, timeout=self.budget_s)
        except (asyncio.TimeoutError, OutcomeUnknown):
            # This site stalled (or is overloaded), or the step failed after storing Began: the
            # transaction may well go on. Its coordinator decides within the prepare timeout
            # (or at its restart), so ask it for the outcome rather than give up at once.
            return await self._outcome_of(event_id, txn_id)

    async def _outcome_of(self, event_id: str, txn_id: str) -> Finished:
        deadline = time.monotonic() + self.settings.protocol.prepare_timeout_s + 5
        while time.monotonic() < deadline:
            known = await self.ask(COORDINATOR, event_id, Query(txn_id, event_id, self.site, self.site))
            if known is not None and known.commit is not None:
                return Finished(txn_id, known.commit, known.reason)
            await asyncio.sleep(0.1)
        raise OutcomeUnknown()

    # --- site-to-site ---------------------------------------------------------------------------
    async def store_files(self, files: list[tuple[str, str, bytes]]) -> None:
        """Each (kind, sha256, bytes) durably on disk here (one trip off the loop for all);
        those already here are claimed (a fresh age: a transaction is about to name them)."""
        try:
            await self.loop.run_in_executor(None, self.files.keep_all, files)
        except OSError as e:  # full, read-only or failing disk: refuse, keep what we have
            problem = problem_of(e)
            self.store.health.failed(problem)
            raise StorageUnavailable(
                f"This site cannot store photos right now ({problem}); nothing was changed.") from e

    def checked(self, prepare: Prepare) -> CheckedPrepare:
        """The prepare with the files it names that this site lacks (those it has are claimed,
        so the sweep of unnamed files leaves them alone: eventstore.blob_sweep). Called by the
        participant actor (Wiring.check_files), in its turn: the claims are a few utime calls."""
        if not isinstance(prepare.payload, AddPhotos):
            return CheckedPrepare(prepare)
        missing = tuple(sha for kind, sha in blobs_of(prepare.payload.photos)
                        if not self.files.claim(kind, sha))
        return CheckedPrepare(prepare, missing)

    def hand_over(self, message, answered) -> bool:
        """The hot path of a protocol request from a site (maybe this one): a prepare or a
        decision goes straight to the participant actor, from any thread, with no task or
        future on the loop (an upload's prepare is checked against this site's files by the
        actor, `checked`); `answered` gets the actor's reply (Failed if it failed) on the
        actor's thread. False for any other message: `dispatch` takes it."""
        if isinstance(message, (Decision, Prepare)):
            self.actors.deliver(PARTICIPANT, message.event_id, message, answered)
            return True
        return False

    async def dispatch(self, message):
        """A protocol request from a site (maybe this one); returns the reply message."""
        if isinstance(message, (Prepare, Decision)):  # a prepare is checked by the actor
            return await self.ask(PARTICIPANT, message.event_id, message)
        if isinstance(message, Query):
            answer = await self.ask(PARTICIPANT, message.event_id, message)
            if answer.commit is None and message.coordinator == self.site:
                return await self.ask(COORDINATOR, message.event_id, message)
            return answer
        if isinstance(message, VoteReport):  # acknowledged once stored
            return await self.ask(COORDINATOR, message.event_id, message)
        if isinstance(message, CountRelay):
            self._relayed(message)
            return None
        if isinstance(message, VoteRequest):
            return await self.voting.serve_forwarded(message)
        if isinstance(message, RoundRequest):
            try:
                return await self.voting.start_round(message)
            except PhotoSessionError as e:
                return RoundAnswer(message.event_id, None, None, e.code)
        return None

    def _relayed(self, relay: CountRelay) -> None:
        if self.counts.offer(relay):
            state = self.views.get(relay.event_id)
            if state is not None and state.exists:
                self.subscribers.publish(self.counts.merged(state))

    def home_reachable(self, state: EventState) -> bool:
        """Whether this site can reach the event's home site (which counts and collects votes)."""
        return self.reachability is None or self.reachability.reachable(state.home_site)

    def reachability_changed(self, site: int) -> None:
        """A peer went away or came back: open pages of the events it is home to are told."""
        for event_id in self.subscribers.events():
            state = self.views.get(event_id)
            if state is not None and state.exists and state.home_site == site:
                self.subscribers.publish(self.counts.merged(state), force=True)

    # --- use cases ------------------------------------------------------------------------------
    async def event_state(self, event_id: str) -> EventState:
        """The event as this site holds it, with the votes its home site relayed."""
        if not valid_event_id(event_id) or event_id not in self.actors.logged:
            raise UnknownEvent()
        state = self.views.get(event_id)
        if state is None:
            state = await self._load_view(event_id)
        if not state.exists:
            raise UnknownEvent()
        return self.counts.merged(state)

    async def _load_view(self, event_id: str) -> EventState:
        """The event as stored here, read from the store without starting its actor."""
        aggregate = await self.loop.run_in_executor(None, self.store.load_event, event_id)
        if aggregate is None:
            raise UnknownEvent()
        return self.views.offer(aggregate.state, aggregate.version)

    async def create_event(self, title) -> str:
        title = clean_title(title)
        event_id = str(uuid.uuid4())
        created_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        finished = await self.run_transaction(event_id, CreateEvent(title, self.site, created_at))
        if not finished.commit:
            raise SiteUnreachable("Not every site could be reached; the event was not created.")
        return event_id


def _resolve(future: asyncio.Future, value) -> None:
    if not future.done():
        future.set_result(value)
