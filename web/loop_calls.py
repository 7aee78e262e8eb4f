"""Calls handed to the site's event loop from other threads (the actors'), coalesced.

`loop.call_soon_threadsafe` wakes the loop for every call: a write to its self-pipe, a read, a
pass of the loop. An actor thread's flush goes on with several actors' steps at once, each
sending, replying, reporting and setting timers: a dozen calls for the loop in a burst. Here the
first call of a burst wakes the loop once, and every call queued until the loop gets to them
runs in that one wake-up, in the order they were made.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class LoopCalls:
    def __init__(self, loop):
        self.loop = loop
        self._calls: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self._due = False  # a wake-up is on its way: what is queued meanwhile rides it

    def call(self, fn: Callable[..., object], *args) -> None:
        """Run fn(*args) on the loop soon; safe from any thread, in order with every other call."""
        with self._lock:
            self._calls.append((fn, args))
            if self._due:
                return
            self._due = True
        try:
            self.loop.call_soon_threadsafe(self._run)
        except RuntimeError:  # the loop is closed (the site is stopping): nothing will run
            with self._lock:
                self._due = False
            raise

    def _run(self) -> None:
        with self._lock:
            calls, self._calls = self._calls, collections.deque()
            self._due = False
        for fn, args in calls:
            try:
                fn(*args)
            except Exception:  # as the loop would report a failed callback, and go on
                log.exception("a call on the loop failed: %r", fn)
