"""Where a site's interpreter time goes, sampled from outside by py-spy (requirements-dev.txt).

`py-spy record --gil` samples only the thread holding the interpreter lock: the Python code a
site runs, and the C it calls without letting go of the lock (JSON, pykka's locks, a socket
write), at the rate given, with no overhead inside the site. What it does not see is the work
done with the lock released (SQLite's commit and its fsync, uvloop waiting for sockets): the
rest of the process's CPU. So the shares below are of interpreter time, and, unlike cProfile's,
are not inflated for code made of many small calls (cProfile's own cost per call is larger
than such a call). Interpreter time is wall time: on a busy machine a thread holding the lock
may be waiting for a core, so compare shares, not seconds, across runs.

Used by `bench_vs_postgres.py --profile gil`: like benchmarks.profile_site's modes, `env` for
the launcher (none needed here), `start` once the sites run, `show` once they have stopped.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

RATE = 250  # samples per second per site
PY_SPY = Path(sys.executable).parent / "py-spy"
OURS = ("actors/", "domain/", "eventstore/", "web/")  # this project's packages
MODES = {
    "gil": ["--gil", "--nonblocking"],  # the thread holding the interpreter lock
    "spy": ["--nonblocking"],  # every thread py-spy finds running (not waiting), lock or not
}


class GilProfiles:
    includes_stop = False  # sampling ends with the load (`finish`), before the sites stop

    def __init__(self, mode: str = "gil"):
        self.mode = mode
        self.env: dict[str, str] = {}
        self.dir = Path(tempfile.mkdtemp(prefix="bench-gil-"))
        self.spies: list[subprocess.Popen] = []

    def start(self, sites) -> None:
        if not PY_SPY.exists():
            raise SystemExit(f"{PY_SPY} is missing: pip install -r requirements-dev.txt")
        self.spies = [
            subprocess.Popen([str(PY_SPY), "record", "--pid", str(sites.process(k).pid),
                              *MODES[self.mode], "--rate", str(RATE), "--format", "raw",
                              "--output", str(self.dir / f"site-{k}.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for k in range(sites.count)]

    def finish(self) -> None:
        """The load is over: py-spy stops (SIGINT) and writes what it sampled."""
        for spy in self.spies:
            spy.send_signal(signal.SIGINT)
        for spy in self.spies:
            spy.wait(timeout=60)

    def show(self, over: str, count: int = 4) -> None:
        """Every site's samples together (after `finish`)."""
        stacks = collections.Counter()
        for k in range(count):
            path = self.dir / f"site-{k}.txt"
            for line in path.read_text().splitlines() if path.exists() else ():
                stack, _, n = line.rpartition(" ")
                stacks[stack] += int(n)
        what = "interpreter time" if self.mode == "gil" else "running time of every thread"
        print(f"\n== {what} of the {count} sites over {over} (py-spy {' '.join(MODES[self.mode])}, "
              f"{RATE}/s):")
        print(report(stacks))
        keep = os.environ.get("BENCH_KEEP_RAW")  # a folder: keep py-spy's raw stacks, per site
        if keep:
            shutil.copytree(self.dir, keep, dirs_exist_ok=True)
            print(f"(py-spy's raw stacks kept in {keep})")
        shutil.rmtree(self.dir, ignore_errors=True)


def _frame(frame: str) -> str:
    """'fn (path/to/file.py:123)' without its line, the path from the package on."""
    frame = re.sub(r":\d+\)$", ")", frame)
    return re.sub(r"\(.*?(site-packages/|python3\.\d+/|/work/[^/]+/)", "(", frame)


def _module(frame: str) -> str:
    """Where a frame's code is: a library by its package (aiohttp), ours by its file."""
    match = re.search(r"\((.*)\)$", frame)
    if match is None:
        return frame
    path = match.group(1)
    return path.split("/")[0] if "/" in path and not path.startswith(OURS) else path


ROLES = (  # a stack's thread, by a frame on it (the first that matches)
    ("Montages.build", "montage threads (eventstore.montage)"),
    ("ActorPool._work", "actor pool (actors.pool)"),
    ("start_sweeping", "actor sweeper (actors.registry)"),
    ("concurrent/futures/thread.py", "default executor (files, images, store reads)"),
    ("web/site.py", "event loop"),
)


def _role(stack: str) -> str:
    for frame, role in ROLES:
        if frame in stack:
            return role
    return "other"


def report(stacks: collections.Counter, top: int = 30) -> str:
    total = sum(stacks.values()) or 1
    own, inclusive, modules = collections.Counter(), collections.Counter(), collections.Counter()
    for stack, n in stacks.items():
        frames = [_frame(f) for f in stack.split(";")]  # outermost first
        own[frames[-1]] += n
        modules[_module(frames[-1])] += n
        for frame in set(frames):
            inclusive[frame] += n
    roles = collections.Counter()
    for stack, n in stacks.items():
        roles[_role(stack)] += n
    lines = [f"{total} samples = {total / RATE:.2f} s sampled", "", "by thread:"]
    lines += [f"  {100 * n / total:5.1f}%  {r}" for r, n in roles.most_common()]
    lines += ["", "own, by module:"]
    lines += [f"  {100 * n / total:5.1f}%  {m}" for m, n in modules.most_common(top)]
    lines += ["", "own, by function:"]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    lines += ["", "inclusive (anywhere on the stack):"]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top * 3)]
    return "\n".join(lines)
