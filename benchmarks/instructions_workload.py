"""bench_instructions.py's workload, run under callgrind: `python instructions_workload.py ROOT N
SCRATCH` starts 4 sites of the code at ROOT in this process (real actors, real SQLite stores
under SCRATCH, messages handed over directly), checkpoints each store (so each keeps the
start-up scan's fold, as a site does after its first checkpoint), warms up with 20 creates, runs
N sequential creates, and checkpoints each store again. Prints "committed N" when all N
committed. Timeouts are long: under callgrind the code runs ~50x slower, and a prepare that
timed out would make a create an abort (a different workload)."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import threading
import uuid
from pathlib import Path

root, creates, scratch = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
sys.path.insert(0, str(root))

from actors.crash import CrashPoints  # noqa: E402
from actors.registry import COORDINATOR, PARTICIPANT, Actors  # noqa: E402
from actors.role_actor import Wiring  # noqa: E402
from domain.config import SiteConfig, Timing  # noqa: E402
from domain.messages import Begin, CreateEvent, Decision, Prepare, Query  # noqa: E402
from eventstore.store import SiteStore  # noqa: E402

TIMING = Timing(prepare_timeout_s=600.0, resend_base_s=60.0, resend_max_s=600.0, in_doubt_s=600.0,
                ack_wait_s=600.0)
TO_PARTICIPANT = (Prepare, Decision, Query)
SITES = (0, 1, 2, 3)


def main() -> None:
    data = Path(tempfile.mkdtemp(prefix="workload-", dir=scratch))
    stores = {s: SiteStore("sqlite", data / f"site-{s}") for s in SITES}
    registries: dict[int, Actors] = {}

    def send(site: int, message, reply) -> None:
        role = PARTICIPANT if isinstance(message, TO_PARTICIPANT) else COORDINATOR
        registries[site].deliver(role, message.event_id, message, reply)

    loop = asyncio.new_event_loop()  # timers as in a site: call_later on an event loop
    threading.Thread(target=loop.run_forever, daemon=True).start()

    def schedule(delay: float, callback) -> None:
        loop.call_soon_threadsafe(loop.call_later, delay, callback)

    for s in SITES:
        registries[s] = Actors(Wiring(SiteConfig(s, SITES, 10, TIMING), stores[s], send, schedule,
                                      CrashPoints(None)))

    def create() -> bool:
        event_id, done, outcome = str(uuid.uuid4()), threading.Event(), []
        begin = Begin(f"0-{uuid.uuid4().hex}", event_id, CreateEvent("Bench", 0, "now"), SITES)
        registries[0].deliver(COORDINATOR, event_id, begin, lambda finished: (outcome.append(finished), done.set()))
        if not done.wait(600):
            raise SystemExit("a create did not finish")
        return bool(getattr(outcome[0], "commit", False))

    for store in stores.values():
        store.checkpoint()
    for _ in range(20):
        create()
    committed = sum(create() for _ in range(creates))
    for store in stores.values():
        store.checkpoint()
    print(f"committed {committed}", flush=True)
    os._exit(0)  # no teardown counted (and none needed: the scratch folder goes)


if __name__ == "__main__":
    main()
