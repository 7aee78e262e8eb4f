"""web.loop_calls: calls for the loop made from other threads run in order, one wake-up per
burst, and one that fails does not keep the others from running."""

from __future__ import annotations

import threading

import pytest

from web.loop_calls import LoopCalls


class HeldLoop:
    """A loop that runs nothing until told: what it was woken for waits in `wakeups`."""

    def __init__(self):
        self.wakeups = []
        self.closed = False

    def call_soon_threadsafe(self, callback, *args):
        if self.closed:
            raise RuntimeError("Event loop is closed")
        self.wakeups.append((callback, args))

    def run_pending(self):
        pending, self.wakeups = self.wakeups, []
        for callback, args in pending:
            callback(*args)


def test_a_burst_of_calls_from_threads_wakes_the_loop_once_and_runs_in_order():
    loop, ran = HeldLoop(), []
    calls = LoopCalls(loop)
    threads = [threading.Thread(target=lambda k=k: [calls.call(ran.append, (k, n)) for n in range(50)])
               for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loop.wakeups) == 1 and ran == []
    loop.run_pending()
    assert len(ran) == 200
    for k in range(4):  # each thread's calls in the order it made them
        assert [n for (t, n) in ran if t == k] == list(range(50))
    calls.call(ran.append, "next")  # the burst is over: the next call wakes the loop again
    assert len(loop.wakeups) == 1
    loop.run_pending()
    assert ran[-1] == "next"


def test_a_call_that_fails_is_logged_and_the_rest_still_run(caplog):
    loop, ran = HeldLoop(), []
    calls = LoopCalls(loop)
    calls.call(ran.append, 1)
    calls.call(lambda: 1 / 0)
    calls.call(ran.append, 2)
    loop.run_pending()
    assert ran == [1, 2]
    assert "a call on the loop failed" in caplog.text


def test_a_closed_loop_refuses_the_call_and_the_next_call_tries_again():
    loop = HeldLoop()
    calls = LoopCalls(loop)
    loop.closed = True
    with pytest.raises(RuntimeError):
        calls.call(print, "lost")
    loop.closed = False
    calls.call(print, "kept")
    assert len(loop.wakeups) == 1
