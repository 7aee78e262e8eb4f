"""The machine's weather, for the benchmarks' reports: this VM is shared, so every figure is
printed beside the load and the disk's flush latency it was taken in (and a benchmark may wait
for a quieter machine first, `--wait-quiet`)."""

from __future__ import annotations

import datetime
import os
import statistics
import sys
import tempfile
import time

import psutil


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def conditions() -> str:
    """What the machine looked like just now: load average and disk-flush latency."""
    return f"load average {load()}; fsync p50 {fsync_ms():.2f} ms, sustained {flush_rate():.0f} flushes/s"


def machine() -> str:
    """The machine and, just now, its weather (`conditions`): every benchmark's first line."""
    mem_gb = psutil.virtual_memory().total / 2**30
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return f"{now}; nproc {os.cpu_count()}; {mem_gb:.1f} GiB RAM; Python {sys.version.split()[0]}; {conditions()}"


def fsync_ms(samples: int = 20) -> float:
    """p50 of fdatasync after a 4 KiB write in the scratch file system: on this shared VM it
    swings between ~0.1 ms and ~4 ms (others' I/O), and every durable commit pays it."""
    fd, path = tempfile.mkstemp(prefix="bench-fsync-")
    try:
        times = []
        for i in range(samples):
            os.pwrite(fd, b"x" * 4096, i * 4096)
            started = time.perf_counter()
            os.fdatasync(fd)
            times.append(time.perf_counter() - started)
        return statistics.median(times) * 1000
    finally:
        os.close(fd)
        os.unlink(path)


def flush_rate(seconds: float = 2.0) -> float:
    """Sustained fdatasyncs per second (4 KiB each, back to back) in the scratch file system.
    On this VM the disk's flushes are rate limited: bursts are fast (~0.1 ms), but once others'
    I/O has used the budget a flush takes ~3.5-4 ms (~250-290 per second), and then every
    system that flushes per commit is bound by it (PostgreSQL's 2PC at 1 client flushes 8
    times in a row per transaction; our create-event ~5 times in a row, ~11 in all)."""
    fd, path = tempfile.mkstemp(prefix="bench-flush-")
    try:
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            os.pwrite(fd, b"x" * 4096, (n % 256) * 4096)
            os.fdatasync(fd)
            n += 1
        return n / (time.perf_counter() - started)
    finally:
        os.close(fd)
        os.unlink(path)


def wait_quiet(max_busy_pct: float, max_wait_s: float) -> str:
    """Wait (at most max_wait_s) until the machine's CPUs are busy less than max_busy_pct over
    3 s (other people's work on a shared machine); returns what was seen, for the report."""
    if max_busy_pct <= 0:
        return "not waited for"
    deadline = time.monotonic() + max_wait_s
    while True:
        busy = psutil.cpu_percent(interval=3.0)
        if busy <= max_busy_pct:
            return f"CPU {busy:.0f}% busy before starting (load {load()})"
        if time.monotonic() > deadline:
            return f"still {busy:.0f}% busy after waiting {max_wait_s:.0f} s: started anyway (load {load()})"
        print(f"  waiting for a quieter machine: CPU {busy:.0f}% busy, load {load()}", flush=True)
        time.sleep(7)


def add_quiet_arguments(parser) -> None:
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="PCT",
                        help="before each measurement wait until the CPUs are less than PCT%% busy "
                             "(shared machine; default: do not wait)")
    parser.add_argument("--wait-quiet-max-s", type=float, default=600.0)
