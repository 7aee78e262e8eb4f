"""The nemesis: a schedule of faults made from the seed alone, and the thread that applies it.

`plan(seed, sites, seconds)` is a pure function: the same seed gives the same faults, at the
same offsets, on the same sites and links, whatever the service does meanwhile. Faults:

    kill          SIGKILL a site; restart it (clean) when the fault ends
    crash_point   restart a site with SITE_CRASH_AT armed: it dies when it gets there and
                  is restarted clean half a second later; if it has not got there when the
                  fault ends, it is killed and restarted clean
    pause         SIGSTOP a site; SIGCONT when the fault ends
    partition     blackhole every link into and out of a site
    blackhole, drop_replies, delay, reset, throttle
                  one directed link (see proxy.py); throttle: `rate` bytes/s each way, so
                  the photos shipped over it before an upload's 2PC arrive slowly

A site has at most one process fault at a time and at most `max_sites_down` sites have one
at once (otherwise nothing at all could commit); a link has at most one fault at a time.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass

from actors.crash import all_crash_points

PROCESS_KINDS = ("kill", "crash_point", "pause")
LINK_KINDS = ("blackhole", "drop_replies", "delay", "reset", "throttle")
RESTART_AFTER_CRASH_S = 0.5
WEIGHTS = {"kill": 3, "crash_point": 3, "pause": 2, "partition": 1,
           "blackhole": 2, "drop_replies": 2, "delay": 2, "reset": 2, "throttle": 2}
# A throttled link: from a slow line (a larger chaos photo takes seconds) to a modest one.
THROTTLE_RATES = (30_000, 300_000)  # bytes/s


@dataclass(frozen=True)
class Fault:
    at: float  # seconds after the nemesis starts
    duration: float
    kind: str
    site: int | None = None
    link: tuple[int, int] | None = None
    point: str | None = None  # crash_point: the armed crash point
    delay_s: float = 0.0  # delay: how late each chunk arrives
    rate: float = 0.0  # throttle: bytes/s each way

    def describe(self) -> str:
        where = f"site {self.site}" if self.site is not None else f"link {self.link[0]}->{self.link[1]}"
        extra = self.point or (f"{self.delay_s:.2f} s" if self.kind == "delay" else
                               f"{self.rate / 1000:.0f} kB/s" if self.kind == "throttle" else "")
        return f"{self.kind} {where} {extra}".strip() + f" for {self.duration:.1f} s"


def _duration(rng: random.Random, kind: str) -> float:
    if kind == "pause" and rng.random() < 0.15:
        return rng.uniform(8.0, 13.0)  # longer than a transaction's whole budget at the site
    if kind == "crash_point":
        return rng.uniform(3.0, 8.0)  # armed this long at most; restarted soon after it fires
    return rng.uniform(0.3, 3.0)


def plan(seed: int, sites: int, seconds: float, interval: float = 0.8, max_sites_down: int = 2,
         quiet_start: float = 2.0, cycle: float = 15.0, calm: float = 4.0) -> list[Fault]:
    """Faults starting between quiet_start and `seconds` (mean gap `interval`), each ending by
    `seconds`. The last `calm` seconds of every `cycle` are calm (only a long pause may reach
    into them), so that rounds can also publish and recovery is seen to finish."""
    rng = random.Random(seed)
    points = all_crash_points()
    site_busy = {k: 0.0 for k in range(sites)}
    link_busy = {(i, j): 0.0 for i in range(sites) for j in range(sites) if i != j}
    faults = []
    t = quiet_start
    while True:
        t += rng.expovariate(1.0 / interval)
        if t >= seconds - 0.5:
            return faults
        kind = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        duration = _duration(rng, kind)
        point = rng.choice(points) if kind == "crash_point" else None
        delay_s = rng.uniform(0.05, 1.5) if kind == "delay" else 0.0
        rate = rng.uniform(*THROTTLE_RATES) if kind == "throttle" else 0.0
        calm_starts = (t // cycle + 1) * cycle - calm
        if t >= calm_starts:
            continue
        if duration < 8.0:
            duration = min(duration, calm_starts - t)
        duration = min(duration, seconds - t)
        if kind in PROCESS_KINDS:
            down = sum(busy > t for busy in site_busy.values())
            free = [k for k, busy in site_busy.items() if busy <= t]
            if down >= max_sites_down or not free:
                continue
            k = rng.choice(free)
            site_busy[k] = t + duration
            faults.append(Fault(t, duration, kind, site=k, point=point))
        elif kind == "partition":
            free = [k for k in range(sites)
                    if all(busy <= t for (i, j), busy in link_busy.items() if k in (i, j))]
            if not free:
                continue
            k = rng.choice(free)
            for key in link_busy:
                if k in key:
                    link_busy[key] = t + duration
            faults.append(Fault(t, duration, kind, site=k))
        else:
            free = [key for key, busy in link_busy.items() if busy <= t]
            if not free:
                continue
            key = rng.choice(free)
            link_busy[key] = t + duration
            faults.append(Fault(t, duration, kind, link=key, delay_s=delay_s, rate=rate))


class Nemesis:
    """Applies a plan to ChaosSites in a thread; every step is written to the history."""

    def __init__(self, sites, faults: list[Fault], history):
        self.sites = sites
        self.faults = faults
        self.history = history
        self.applied: Counter = Counter()
        self.errors: list[str] = []
        self._died: dict[int, float] = {}  # armed site -> when it was first seen dead
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nemesis", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        steps = sorted([(f.at, 0, i, "start") for i, f in enumerate(self.faults)]
                       + [(f.at + f.duration, 1, i, "end") for i, f in enumerate(self.faults)])
        t0 = time.monotonic()
        for at, _, i, phase in steps:
            while (wait := t0 + at - time.monotonic()) > 0:
                if self._stop.wait(min(wait, RESTART_AFTER_CRASH_S / 2)):
                    return
                self._restart_crashed()
            fault = self.faults[i]
            try:
                (self._begin if phase == "start" else self._end)(fault)
            except Exception as e:  # a nemesis step that fails is reported, never fatal
                self.errors.append(f"{phase} {fault.describe()}: {e!r}")
            self.history.nemesis(phase, {"fault": i, **asdict(fault)})

    def _restart_crashed(self) -> None:
        """A site that died at its armed crash point comes back clean shortly after."""
        now = time.monotonic()
        for k, point in list(self.sites.armed.items()):
            if self.sites.running(k):
                continue
            died = self._died.setdefault(k, now)
            if now - died >= RESTART_AFTER_CRASH_S:
                del self._died[k]
                self.sites.restart_clean(k)
                self.history.nemesis("crashed", {"site": k, "point": point})

    def _begin(self, f: Fault) -> None:
        s = self.sites
        if f.kind == "kill":
            s.crash(f.site)
        elif f.kind == "crash_point":
            s.start_armed(f.site, f.point)
        elif f.kind == "pause":
            s.pause(f.site)
        elif f.kind == "partition":
            for other in s.sites:
                if other != f.site:
                    s.proxies.set(f.site, other, "blackhole")
                    s.proxies.set(other, f.site, "blackhole")
        else:
            s.proxies.set(*f.link, f.kind, f.delay_s, f.rate)
        self.applied[f.kind] += 1

    def _end(self, f: Fault) -> None:
        s = self.sites
        if f.kind == "kill" or (f.kind == "crash_point" and f.site in s.armed):
            self._died.pop(f.site, None)
            s.restart_clean(f.site)
        elif f.kind == "crash_point":
            pass  # it reached its crash point and is back already
        elif f.kind == "pause":
            s.resume(f.site)
        elif f.kind == "partition":
            for other in s.sites:
                if other != f.site:
                    s.proxies.heal(f.site, other)
                    s.proxies.heal(other, f.site)
        else:
            s.proxies.heal(*f.link)
