"""Log a repeated failure once per cause and interval, with a count of the ones held back.

A store that is down fails every message, every reload and every resend; a line (and a
traceback) for each would bury the log. The first failure of a cause is logged at once; more
of the same within `interval_s` are counted and the count is told with the next line.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable


class RepeatedLog:
    def __init__(self, logger: logging.Logger, interval_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic):
        self.logger = logger
        self.interval_s = interval_s
        self.clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}  # cause -> when it was last logged
        self._held: dict[str, int] = {}  # cause -> failures not logged since

    def error(self, cause: str, message: str, *args, exc_info=None) -> bool:
        """Log `message` at ERROR unless `cause` was logged less than interval_s ago; whether
        it was logged."""
        return self.log(logging.ERROR, cause, message, *args, exc_info=exc_info)

    def warning(self, cause: str, message: str, *args) -> bool:
        return self.log(logging.WARNING, cause, message, *args)

    def log(self, level: int, cause: str, message: str, *args, exc_info=None) -> bool:
        now = self.clock()
        with self._lock:
            last = self._last.get(cause)
            if last is not None and now - last < self.interval_s:
                self._held[cause] = self._held.get(cause, 0) + 1
                return False
            self._last[cause] = now
            held = self._held.pop(cause, 0)
        if held:
            message += " (%d more like it in the last %.0f s not logged)"
            args = (*args, held, self.interval_s)
        self.logger.log(level, message, *args, exc_info=exc_info)
        return True
