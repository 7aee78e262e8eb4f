"""The output of one protocol step: what to store, then what to send, schedule and report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

S = TypeVar("S")


@dataclass(frozen=True)
class Send:
    site: int
    message: Any


@dataclass(frozen=True)
class Timer:
    delay_s: float
    message: Any


@dataclass(frozen=True)
class Finished:
    """A transaction this coordinator ran has an answer for its client."""

    txn_id: str
    commit: bool
    reason: str | None


@dataclass(frozen=True)
class Alarm:
    """Something that must never happen did (this site cannot apply what it is told): the site
    shows it and logs it; the step acknowledges nothing for it."""

    event_id: str
    txn_id: str
    problem: str


@dataclass(frozen=True)
class Step(Generic[S]):
    """`state` is the role's state after the step; `records` must be durable before anything
    in `send`, `timers`, `reply`, `finished` or `alarms` happens (store, then send), except the
    `finished` answers of a step that says `finished_first` (they promise nothing its records
    add) and the `send` of a step that says `send_first` (a coordinator's prepares, which
    presumed abort lets go before their Began is stored: domain.coordinator), which may go
    before the records are stored."""

    state: S
    records: tuple = ()
    send: tuple[Send, ...] = ()
    timers: tuple[Timer, ...] = ()
    reply: Any = None
    finished: tuple[Finished, ...] = ()
    alarms: tuple[Alarm, ...] = ()
    finished_first: bool = False
    send_first: bool = False
