"""The loop every protocol actor runs: receive, decide (a pure step), store durably, then send.

One actor per (event, role) at a site. Its aggregate is written by it alone, so saves never
conflict. A failed message never kills the actor: the error goes to whoever asked, marked as
definite (nothing was stored) or not (it failed after its records were stored), and the actor
reloads its state from the store (what was not stored did not happen). Storage trouble is
logged by the store; other failures once per cause and interval, never one line per resend.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from actors.crash import STEP_NAMES, CrashPoints
from actors.pool import ActorPool, PooledActor
from domain.config import SiteConfig
from domain.errors import OutcomeUnknown, PhotoSessionError, SiteUnreachable, StorageUnavailable
from domain.messages import CheckedPrepare
from domain.step import Alarm
from eventstore.repeated_log import RepeatedLog

log = logging.getLogger(__name__)

Reply = Callable[[Any], None]


@dataclass(frozen=True)
class Envelope:
    message: Any
    reply: Reply | None = None


@dataclass(frozen=True)
class Snapshot:
    """Ask an actor for its current (immutable) state."""


@dataclass(frozen=True)
class IdleCheck:
    """From the registry: may this actor stop now without losing anything? The answer is what
    it would leave behind (Left), or None while it holds something only memory has. The reply
    returns whether the registry took the answer (it gives up on late ones): an actor whose
    Left was taken stops there and then, in the turn that answered."""


@dataclass(frozen=True)
class Left:
    """What a retired actor leaves: its last state (to judge its timers by) and its aggregate,
    which is what the store holds for its role and event (None: nothing), as this actor alone
    wrote it. The next actor for the role and event starts from it without reading the store."""

    state: Any
    aggregate: Any


@dataclass(frozen=True)
class TimerFired:
    """A timer this actor set, on its way back through the registry (which may drop it).
    `obsolete`: the actor's own state when it fired already said it would change nothing."""

    message: Any
    obsolete: bool = False


@dataclass(frozen=True)
class Failed:
    """The reply when a message could not be handled. `after_stored`: it failed after its
    records were stored, so what it asked for may have happened (an indefinite failure)."""

    error: Exception
    after_stored: bool = False

    def as_error(self) -> PhotoSessionError:
        """What the asker is told: the outcome is unknown if records were stored, the error
        itself if it is one of ours, else that this site could not carry out the step."""
        if self.after_stored:  # its records were stored: the change may go on
            return OutcomeUnknown()
        if isinstance(self.error, PhotoSessionError):
            return self.error
        return SiteUnreachable("This site could not carry out the step; nothing was changed.")


@dataclass(frozen=True)
class Wiring:
    """What a site hands its actors: the store, the transport and the clock."""

    config: SiteConfig
    store: Any  # eventstore.store.SiteStore
    send: Callable[[int, Any, Reply], None]  # (site, message, where its reply goes)
    schedule: Callable[[float, Callable[[], None]], None]  # run a callback after a delay
    crash: CrashPoints
    # (event, role, state, how many records it is built from): a stored change, or a start
    on_change: Callable[[str, str, Any, int], None] = lambda event_id, role, state, seq: None
    # (event, role, records just stored, the state they lead to): what the site counts
    on_records: Callable[[str, str, tuple, Any], None] = lambda event_id, role, records, state: None
    on_alarm: Callable[[Alarm], None] = lambda alarm: None  # what must never happen did
    # A prepare as the participant's step sees it: with the files it names that this site lacks
    # (those it holds are claimed). By default every file is held (wirings without files).
    check_files: Callable[[Any], Any] = CheckedPrepare
    failures: RepeatedLog = field(default_factory=lambda: RepeatedLog(log))


class RoleActor(PooledActor):
    role = "role"
    aggregate_class: type = object

    def __init__(self, event_id: str, wiring: Wiring, mailbox: Reply, pool: ActorPool, fresh: bool = False,
                 left: Left | None = None):
        super().__init__(pool)
        self.fresh = fresh  # nothing stored for this role and event yet: no need to read the store
        self.left = left  # what the actor before this one left: no need to read the store either
        self.event_id = event_id
        self.wiring = wiring
        self.mailbox = mailbox  # replies and timers reach this role through it, even after a stop
        self.aggregate = None
        self.state = self.aggregate_class.initial_state(event_id)
        self.load_error: Exception | None = None  # the store could not be read at start
        self.stored = False  # whether the message being handled has had its records stored

    # --- what a role defines -----------------------------------------------------------------
    def decide(self, state, message):
        raise NotImplementedError

    def load_aggregate(self):
        """This role's aggregate from the store, or None if it has stored nothing yet."""
        raise NotImplementedError

    def keeps_memory(self) -> bool:
        """True while this actor holds something the store does not (it must not be stopped)."""
        return False

    def handle_local(self, envelope: Envelope) -> bool:
        """Messages that are not protocol steps (a snapshot, a client waiting); True if handled."""
        if isinstance(envelope.message, Snapshot):
            envelope.reply(self.state)
            return True
        if isinstance(envelope.message, IdleCheck):
            left = self.leaving()
            if envelope.reply(left) and left is not None:
                self._stop()  # pykka's own teardown, in this turn: no stop message to queue
            return True
        return False

    def leaving(self) -> Left | None:
        """What this actor leaves if it stops now: None while it holds something only memory
        has, or could not read the store."""
        if self.keeps_memory() or self.load_error is not None:
            return None
        return Left(self.state, self.aggregate)

    def before_store(self, step) -> None:
        """What of `step` may happen before its records are stored (domain.step.Step says
        which; by default nothing: store, then act)."""

    @staticmethod
    def recalled(step) -> tuple:
        """What to send when a step that sent before its records were stored (`send_first`)
        could not store them (by default nothing)."""
        return ()

    def after_step(self, step, envelope: Envelope) -> None:
        if envelope.reply is not None:
            envelope.reply(step.reply)

    # --- the loop ------------------------------------------------------------------------------
    def on_start(self) -> None:
        """Rebuild from the store in the actor's first turn (not in whoever started it)."""
        if self.fresh:
            return
        if self.left is not None:
            self._resume(self.left.aggregate)
            self.left = None
            self._report()
            return
        try:
            self._load()
        except Exception as error:  # the messages waiting get it as their answer, not silence
            self._log_failure(error, "being loaded")
            self.load_error = error
            return
        self._report()

    def _log_failure(self, error: Exception, doing: str) -> None:
        if isinstance(error, StorageUnavailable):
            return  # the store logged its trouble, once per cause and interval
        self.wiring.failures.error(
            f"{self.role}:{type(error).__name__}", "%s %s failed while %s: %r",
            self.role, self.event_id, doing, error, exc_info=error)

    def _report(self) -> None:
        """Tell the site what is now stored, in order with every later change."""
        if self.aggregate is not None:
            self.wiring.on_change(self.event_id, self.role, self.state, self.aggregate.version)

    def _load(self) -> None:
        self._resume(self.load_aggregate())

    def _resume(self, aggregate) -> None:
        """Start from `aggregate` as stored (None: nothing stored yet)."""
        self.aggregate = aggregate
        if self.aggregate is None:
            self.state = self.aggregate_class.initial_state(self.event_id)
        else:
            self.state = self.aggregate.state

    def on_receive(self, envelope: Envelope) -> None:
        self.stored = False  # whether this message's records reached the store
        try:
            if self.load_error is not None:
                self._load()
                self.load_error = None
                self._report()
            if not self.handle_local(envelope):
                self._step(envelope)
        except Exception as error:  # a failed message must not kill the actor
            self._failed(envelope, error)

    def _failed(self, envelope: Envelope, error: Exception) -> None:
        """The message failed: logged, the state reloaded from the store (what was not stored
        did not happen), and the asker told whether its records were stored."""
        self._log_failure(error, f"handling {type(envelope.message).__name__}")
        try:
            self._load()
        except Exception as load_error:  # the store is down too: reload on the next message
            self.load_error = load_error
        if envelope.reply is not None:
            envelope.reply(Failed(error, after_stored=self.stored))

    def _step(self, envelope: Envelope) -> None:
        step = self.decide(self.state, envelope.message)
        names = [STEP_NAMES[type(r).__name__] for r in step.records]
        if not step.records:
            self._go_on(step, envelope, names)
            return
        self.before_store(step)
        if step.send_first:  # presumed abort: a create's prepares go while its Began is stored
            self._send_all(step.send)  # (so a crash point before_begin_stored fires after they left)
        for name in names:
            self.wiring.crash.hit(self.role, "before_stored", name)
        if self.aggregate is None:  # a new log: its creation carries the first record
            self.aggregate = self.aggregate_class.begun(self.event_id, step.records, step.state)
        else:
            self.aggregate.take(step.records, step.state)  # no record folded again
        # The records go with the next flush of the pool (one forced write for every actor
        # that saved meanwhile); this actor takes no other message until they are stored.
        aggregate, save_later = self.aggregate, self.wiring.store.save_later
        self.suspend(lambda resume: save_later(aggregate, lambda error: resume(
            lambda: self._after_flush(step, envelope, names, error))))

    def _after_flush(self, step, envelope: Envelope, names, error: Exception | None) -> None:
        try:
            if error is not None:
                self._send_all(self.recalled(step))
                raise error
            self._stored(step, envelope, names)
        except Exception as e:
            self._failed(envelope, e)

    def _stored(self, step, envelope: Envelope, names) -> None:
        self.stored = True
        self.wiring.on_records(self.event_id, self.role, step.records, step.state)
        for name in names:
            self.wiring.crash.hit(self.role, "after_stored", name)
        self._go_on(step, envelope, names)

    def _go_on(self, step, envelope: Envelope, names) -> None:
        """What follows a step once its records (if any) are stored: the new state, reported
        before any reply or send (so an answer never overtakes the change), the timers, the
        reply, the messages."""
        self.state = step.state
        if step.records:
            self._report()
        for alarm in step.alarms:
            self.wiring.on_alarm(alarm)
        # Timers first: a send that fails must not leave a stored intent without its timeout
        # or resend.
        for timer in step.timers:
            self.wiring.schedule(timer.delay_s, self._timer_callback(timer.message))
        self.after_step(step, envelope)
        if not step.send_first:
            self._send_all(step.send)
        for name in names:
            self.wiring.crash.hit(self.role, "after_sent", name)

    def _send_all(self, sends) -> None:
        for send in sends:
            self.wiring.send(send.site, send.message, self.mailbox)

    def _timer_callback(self, message) -> Callable[[], None]:
        """Fired (on the site's loop), a timer is judged by this actor's state then, read from
        here: that state is immutable, and a timer obsolete in it stays obsolete in every later
        one (`timer_obsolete`). Most of a transaction's timers (its prepare timeout, the wait for
        its acknowledgements, a participant's doubt) fire after it ended: none of them costs an
        actor's turn, whether the actor still runs or was retired."""
        mailbox = self.mailbox

        def fire() -> None:
            mailbox(TimerFired(message, obsolete=self.timer_obsolete(self.state, message)))

        return fire

    @staticmethod
    def timer_obsolete(state, message) -> bool:
        """Whether a timer due now would change nothing (see domain): a role may say so."""
        return False
