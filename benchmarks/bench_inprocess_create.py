"""Create-event 2PC across N sites wired in one process: real actors and real SQLite stores,
messages handed over directly (no HTTP), to see what the actors and the store cost alone.

    python benchmarks/bench_inprocess_create.py [--sites 4] [--n 300] [--profile]

Prints wall time and CPU time (all threads of this process) per create, sequentially. With
--profile, a CPU profile of the actors' threads (benchmarks.profile_site.CpuProfiles: cProfile
on a per-thread CPU clock) follows; it slows the run, so its times are shares, not costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pykka

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actors.crash import CrashPoints  # noqa: E402
from actors.registry import COORDINATOR, PARTICIPANT, Actors  # noqa: E402
from actors.role_actor import Wiring  # noqa: E402
from domain.config import SiteConfig, Timing  # noqa: E402
from domain.messages import Begin, CreateEvent, Decision, Prepare, Query  # noqa: E402
from eventstore.store import SiteStore  # noqa: E402

TIMING = Timing(prepare_timeout_s=3.0, resend_base_s=0.2, resend_max_s=5.0, in_doubt_s=5.0, ack_wait_s=2.0)
TO_PARTICIPANT = (Prepare, Decision, Query)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=4)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--profile", action="store_true", help="print a CPU profile of the actors' threads")
    args = parser.parse_args()
    profiles = None
    if args.profile:
        from benchmarks.profile_site import CpuProfiles

        profiles = CpuProfiles()  # before the actors' pool threads start
    sites = tuple(range(args.sites))
    scratch = Path(tempfile.mkdtemp(prefix="bench-inprocess-"))
    stores = {s: SiteStore("sqlite", scratch / f"site-{s}") for s in sites}
    registries: dict[int, Actors] = {}

    def send(site: int, message, reply) -> None:
        role = PARTICIPANT if isinstance(message, TO_PARTICIPANT) else COORDINATOR
        registries[site].deliver(role, message.event_id, message, reply)

    loop = asyncio.new_event_loop()  # timers run as in a site: call_later on an event loop
    threading.Thread(target=loop.run_forever, daemon=True).start()

    def schedule(delay: float, callback) -> None:
        loop.call_soon_threadsafe(loop.call_later, delay, callback)

    for s in sites:
        wiring = Wiring(SiteConfig(s, sites, 10, TIMING), stores[s], send, schedule, CrashPoints(None))
        registries[s] = Actors(wiring)
        registries[s].start_sweeping()

    def create() -> None:
        event_id, done = str(uuid.uuid4()), threading.Event()
        begin = Begin(f"0-{uuid.uuid4().hex}", event_id, CreateEvent("Bench", 0, "now"), sites)
        registries[0].deliver(COORDINATOR, event_id, begin, lambda finished: done.set())
        if not done.wait(10):
            raise SystemExit("a create did not finish in 10 s")

    for _ in range(30):  # warm-up
        create()
    if profiles is not None:
        profiles.start()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(args.n):
        create()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"{args.sites} sites in one process, {args.n} sequential creates; load {os.getloadavg()[0]:.2f}")
    print(f"per create: wall {wall / args.n * 1000:.2f} ms, CPU {cpu / args.n * 1000:.2f} ms")
    dropped = sum(r.timers_dropped for r in registries.values())
    print(f"timers dropped as obsolete (their actors retired): {dropped}")
    if profiles is not None:
        print(profiles.report())
    for registry in registries.values():
        registry.stop_all()
    pykka.ActorRegistry.stop_all(block=True)
    loop.call_soon_threadsafe(loop.stop)
    for store in stores.values():
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
