"""A repeated failure is logged once per cause and interval, with a count of those held back."""

import logging

from eventstore.repeated_log import RepeatedLog


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_cause_is_logged_once_per_interval_and_the_next_line_counts_the_ones_held_back(caplog):
    clock = Clock()
    repeated = RepeatedLog(logging.getLogger("test.repeated"), interval_s=30.0, clock=clock)
    with caplog.at_level(logging.ERROR, logger="test.repeated"):
        logged = [repeated.error("db down", "store failed: %s", "refused") for _ in range(500)]
        clock.now += 29.9
        logged.append(repeated.error("db down", "store failed: %s", "refused"))
        assert repeated.error("disk full", "store failed: %s", "no space")  # another cause: at once
        clock.now += 0.2
        assert repeated.error("db down", "store failed: %s", "refused")
    assert logged == [True] + [False] * 500
    assert [r.getMessage() for r in caplog.records] == [
        "store failed: refused",
        "store failed: no space",
        "store failed: refused (500 more like it in the last 30 s not logged)",
    ]
