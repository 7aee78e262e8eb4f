"""A site with a sampling profiler inside: `python -m benchmarks.profile_site --site K ...`
takes the arguments of `python -m web.site` and runs it unchanged.

py-spy is not installed and cProfile sees one thread only, while a site's work is spread over
the event loop, the actors' threads and the executor. So a thread samples every thread's Python
stack (sys._current_frames) every INTERVAL and, at exit, writes to
$BENCH_PROFILE_DIR/site-K.txt the functions seen most, by own time (innermost frame) and by
inclusive time (anywhere on the stack), as a share of the samples of threads that were not idle
(idle: a thread parked in a lock/condition wait, a queue get, or the event loop's select).
A thread waiting for the GIL or in a C call (an fsync inside sqlite3's commit, a JPEG decode)
counts as busy in the function that made the call. The launcher runs it for every site when
PHOTO_SITE_MODULE=benchmarks.profile_site; SIGUSR1 restarts the count (so start-up is left out).
"""

from __future__ import annotations

import atexit
import collections
import cProfile
import os
import re
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

INTERVAL = float(os.environ.get("BENCH_PROFILE_INTERVAL", "0.005"))
IDLE = {
    ("threading.py", "wait"), ("threading.py", "_wait_for_tstate_lock"), ("queue.py", "get"),
    ("selectors.py", "select"), ("threading.py", "_bootstrap_inner"), ("thread.py", "_worker"),
}


def _where(code) -> str:
    path = code.co_filename
    for marker in ("site-packages/", "/lib/python3.11/", str(ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{code.co_name}"


class Sampler:
    def __init__(self):
        self.own = collections.Counter()
        self.inclusive = collections.Counter()
        self.busy = 0
        self.idle = 0
        self.ticks = 0
        self._stop = threading.Event()
        self._me = None

    def run(self) -> None:
        self._me = threading.get_ident()
        while not self._stop.wait(INTERVAL):
            self.ticks += 1
            for ident, frame in sys._current_frames().items():
                if ident == self._me:
                    continue
                code = frame.f_code
                if (os.path.basename(code.co_filename), code.co_name) in IDLE:
                    self.idle += 1
                    continue
                self.busy += 1
                self.own[_where(code)] += 1
                seen = set()
                while frame is not None:
                    where = _where(frame.f_code)
                    if where not in seen:
                        seen.add(where)
                        self.inclusive[where] += 1
                    frame = frame.f_back

    def reset(self, *_) -> None:
        """SIGUSR1: forget what was sampled so far (start-up), measure from now."""
        self.own, self.inclusive = collections.Counter(), collections.Counter()
        self.busy = self.idle = self.ticks = 0

    def report(self, top: int = 25) -> str:
        busy = max(1, self.busy)
        lines = [f"{self.ticks} ticks of {INTERVAL * 1000:g} ms; {self.busy} busy thread samples, "
                 f"{self.idle} idle ({self.busy / max(1, self.ticks):.2f} busy threads on average)",
                 "", "own time (innermost Python frame):"]
        lines += [f"  {100 * n / busy:5.1f}%  {where}" for where, n in self.own.most_common(top)]
        lines += ["", "inclusive (anywhere on the stack):"]
        lines += [f"  {100 * n / busy:5.1f}%  {where}" for where, n in self.inclusive.most_common(top * 2)]
        return "\n".join(lines)


class CpuProfiles:
    """BENCH_PROFILE_MODE=cpu: cProfile with a per-thread CPU clock (time.thread_time) in every
    thread started after SIGUSR1, and in the main thread (the event loop) from SIGUSR1 on; the
    threads' statistics are merged at exit. What it shows is CPU time by function (cProfile's
    own overhead inflates functions with many small calls). The threads actors take turns on
    (actors.pool, started with the site) are profiled from their start, which adds the little
    they do at start-up; other threads started before SIGUSR1 (the first executor worker) are
    not seen, unless BENCH_PROFILE_ALL=1: then every thread is, from its start (start-up too)."""

    def __init__(self):
        self.profiles: list[cProfile.Profile] = []
        self.kinds: list[str] = []  # each profile's thread, by kind (the loop, actors, ...)
        self.lock = threading.Lock()
        self.active = False
        original_run = threading.Thread.run
        owner = self

        def run(thread_self):
            pooled = thread_self.name.startswith("actors-")
            if not (owner.active or pooled) or thread_self.name == "bench-sampler":
                return original_run(thread_self)
            profile = cProfile.Profile(time.thread_time)
            with owner.lock:
                owner.profiles.append(profile)
                owner.kinds.append(re.sub(r"[-_]?\d.*$", "", thread_self.name))
            profile.enable()
            try:
                return original_run(thread_self)
            finally:
                profile.disable()

        threading.Thread.run = run

    def start(self, *_) -> None:  # SIGUSR1, in the main thread
        if getattr(self, "main_profile", None) is not None:
            return
        self.active = True
        profile = cProfile.Profile(time.thread_time)
        with self.lock:
            self.profiles.append(profile)
            self.kinds.append("event loop")
        profile.enable()
        self.main_profile = profile

    def report(self, top: int = 30) -> str:
        import io
        import pstats

        if not self.profiles:
            return "(no CPU profile: SIGUSR1 never came)"
        self.main_profile.disable()

        class Snapshot:
            def __init__(self, profile):
                profile.snapshot_stats()  # also works while another thread still profiles
                self.stats = profile.stats

            def create_stats(self):
                pass

        with self.lock:
            profiles, kinds = list(self.profiles), list(self.kinds)
        snapshots = [Snapshot(profile) for profile in profiles]
        by_kind: dict[str, list[float]] = {}
        for kind, snapshot in zip(kinds, snapshots):
            by_kind.setdefault(kind, []).append(sum(v[2] for v in snapshot.stats.values()))
        stats = pstats.Stats(snapshots[0])
        for snapshot in snapshots[1:]:
            stats.add(snapshot)
        out = io.StringIO()
        stats.stream = out
        total = sum(v[2] for v in stats.stats.values())
        out.write(f"CPU profile of {len(profiles)} threads; {total:.2f} CPU s in profiled functions' own time\n")
        out.write("by thread: " + "; ".join(f"{kind} ({len(cpu)} threads) {sum(cpu):.2f} s"
                                        for kind, cpu in sorted(by_kind.items(), key=lambda kv: -sum(kv[1])))
                  + "\n")
        self.merged = stats  # for dump()
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumtime").print_stats(top)
        return "\n".join(ln for ln in out.getvalue().splitlines() if ln.strip())


def main() -> int:
    site = sys.argv[sys.argv.index("--site") + 1] if "--site" in sys.argv else "x"
    out_dir = Path(os.environ.get("BENCH_PROFILE_DIR", "."))
    if os.environ.get("BENCH_PROFILE_MODE") == "cpu":
        return cpu_main(site, out_dir)
    sampler = Sampler()
    threading.Thread(target=sampler.run, name="bench-sampler", daemon=True).start()

    def write() -> None:
        sampler._stop.set()
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"site-{site}.txt").write_text(sampler.report())

    atexit.register(write)
    import signal

    signal.signal(signal.SIGUSR1, sampler.reset)
    from web.site import main as site_main

    started = time.monotonic()
    try:
        return site_main(sys.argv[1:])
    finally:
        sys.stderr.write(f"profile_site: ran {time.monotonic() - started:.0f} s\n")


def cpu_main(site: str, out_dir: Path) -> int:
    import signal

    profiles = CpuProfiles()
    if os.environ.get("BENCH_PROFILE_ALL"):
        profiles.active = True  # every thread from its start; the loop from SIGUSR1
    signal.signal(signal.SIGUSR1, profiles.start)

    def write() -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"site-{site}.txt").write_text(profiles.report())
        profiles.merged.dump_stats(out_dir / f"site-{site}.pstats")  # for pstats, by caller

    atexit.register(write)
    from web.site import main as site_main

    return site_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
