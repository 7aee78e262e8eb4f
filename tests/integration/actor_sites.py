"""Real actors of one site over a real SQLite store, for the integration tests that drive
them directly: asking an actor, one site's actors, and stores that fail or count their reads."""

import threading
import time
from contextlib import contextmanager

from actors.crash import CrashPoints
from actors.registry import Actors
from actors.role_actor import Wiring
from domain.config import SiteConfig, Timing
from domain.errors import StorageUnavailable
from eventstore.store import SiteStore

TIMING = Timing(prepare_timeout_s=1.0, resend_base_s=0.05, resend_max_s=0.2, in_doubt_s=0.3, ack_wait_s=0.5)


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def pending_records(aggregates) -> list[str]:
    """The names of the records these aggregates are about to store, in order: a new log's
    creation ("Created") and the first record it carries, then each record event's."""
    names = []
    for aggregate in aggregates:
        for event in aggregate.pending_events:
            names.append(type(event).__name__)
            first = getattr(event, "first", None)
            if first:
                names.append(first["type"])
    return names


def ask(actors, role, event_id, message, timeout=5.0):
    done = threading.Event()
    box = []

    def reply(value):
        box.append(value)
        done.set()

    actors.deliver(role, event_id, message, reply)
    assert done.wait(timeout), f"no reply to {message!r}"
    return box[0]


@contextmanager
def one_site(store, sites=(0,), send=lambda *a: None, **options):
    """Site 0's actors over `store` (their timers never fire); stopped, and the store closed,
    after the block."""
    wiring = Wiring(SiteConfig(0, sites, 10, TIMING), store, send, lambda d, cb: None, CrashPoints(None))
    actors = Actors(wiring, **options)
    try:
        yield actors
    finally:
        actors.stop_all()
        store.close()


class FailingStore(SiteStore):
    def __init__(self, *args):
        super().__init__(*args)
        self.fail = True

    def write(self, aggregates):
        if self.fail:
            raise StorageUnavailable("disk full")
        return super().write(aggregates)


class CountingStore(SiteStore):
    loads = 0

    def load_event(self, event_id):
        self.loads += 1
        return super().load_event(event_id)
