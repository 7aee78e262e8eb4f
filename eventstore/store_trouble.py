"""What a failing event store means, once, at the store's boundary: which errors say that the
storage (disk, database server) cannot serve, the problem in words for a person (never the
driver's text, which goes to the log), and the site's storage health shown by `/api/status`.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
from contextlib import contextmanager

import sqlalchemy.exc
from eventsourcing.persistence import IntegrityError, PersistenceError, ProgrammingError

from domain.errors import StorageUnavailable
from eventstore.repeated_log import RepeatedLog

log = logging.getLogger(__name__)

# Raised by the library, SQLAlchemy, the drivers or the OS when the storage cannot serve.
# IntegrityError (a stale save) and ProgrammingError are bugs of ours, not storage trouble.
STORE_ERRORS = (PersistenceError, sqlalchemy.exc.SQLAlchemyError, sqlite3.Error, OSError)
OUR_BUGS = (IntegrityError, ProgrammingError, sqlalchemy.exc.ArgumentError)


def is_store_failure(error: BaseException) -> bool:
    return isinstance(error, STORE_ERRORS) and not isinstance(error, OUR_BUGS)


def problem_of(error: BaseException) -> str:
    """The failure in words for a person (the driver's own text is for the log only)."""
    seen, texts = error, []
    while seen is not None:  # the library wraps the driver's error: look at the whole chain
        if isinstance(seen, OSError) and seen.errno == errno.ENOSPC:
            return "the disk is full"
        if isinstance(seen, OSError) and seen.errno == errno.EROFS:
            return "the disk is read-only"
        texts.append(str(seen).lower())
        seen = seen.__cause__ or seen.__context__
    text = " ".join(texts)
    if "full" in text:
        return "the disk is full"
    if "readonly" in text or "read-only" in text:
        return "the disk is read-only"
    if any(word in text for word in ("connect", "server", "closed", "terminat", "shutdown", "timeout")):
        return "the database server does not answer"
    return "the event store cannot be used"


class StoreHealth:
    """Whether the store took its last write or read; updated by every store call."""

    def __init__(self):
        self._lock = threading.Lock()
        self.problem: str | None = None
        self.failures = 0  # every failed store call since start (operators' figures)

    @property
    def ok(self) -> bool:
        return self.problem is None

    def succeeded(self) -> None:
        if self.problem is not None:
            with self._lock:
                if self.problem is not None:
                    log.warning("the event store works again (was: %s)", self.problem)
                self.problem = None

    def failed(self, problem: str) -> None:
        with self._lock:
            self.problem = problem
            self.failures += 1

    def as_json(self) -> dict:
        problem = self.problem
        return {"ok": True} if problem is None else {"ok": False, "problem": problem}


class StoreGuard:
    """Wraps every call into the store: a storage failure becomes StorageUnavailable (a message
    in words), is logged once per cause and interval with the driver's text, and marks the
    health; a success marks it healthy again."""

    def __init__(self, health: StoreHealth, interval_s: float = 30.0):
        self.health = health
        self.repeated = RepeatedLog(log, interval_s)

    @contextmanager
    def __call__(self, doing: str, writes: bool = False):
        """Guard one store call; only a write (or a probe of writing) proves the store healthy:
        a full disk still serves reads."""
        try:
            yield
        except StorageUnavailable:
            raise
        except Exception as error:
            if not is_store_failure(error):
                raise
            problem = problem_of(error)
            self.health.failed(problem)
            self.repeated.error(problem, "the event store failed to %s: %s: %s",
                                doing, type(error).__name__, _driver_text(error))
            raise StorageUnavailable(
                f"This site cannot {doing} right now ({problem}); nothing was changed.") from error
        if writes:
            self.health.succeeded()


def _driver_text(error: BaseException) -> str:
    return " ".join(str(error).split())[:500]
