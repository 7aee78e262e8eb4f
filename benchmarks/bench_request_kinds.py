"""Server CPU per request, one kind at a time: what each request of bench_scale's mixed load costs.

    python benchmarks/bench_request_kinds.py [--events 300] [--seconds 8] [--kinds read,upload,create]
                                             [--checkout DIR] [--set KEY=VALUE ...]

bench_scale's mixed load (80 % reads, 15 % uploads, 5 % creates) gives one figure for all three;
this gives each its own. 4 sites are started (the code of --checkout, this one by default, with
its settings.toml and any --set lines), populated as bench_scale does (--events events, 20 % with
tiny photos from 3-10 users each), then for each kind in turn 16 clients send only that kind for
--seconds: a read (`GET /api/events/{id}` of a random event at a random site), an upload (a
tiny 64x48 photo by one of the event's submitters at a random site: ship, then a 2PC), a create.
Printed per kind: requests/s, p50, server CPU per request (the 4 site processes' CPU over the
phase divided by the requests done), and from every site's /metrics and store what the phase
added: transactions by kind and outcome, and records stored by type.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import sqlite3
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h  # noqa: E402
import _profiles as profiling  # noqa: E402
import _weather as weather  # noqa: E402
import bench_scale  # noqa: E402


def counts(sites: h.Sites) -> collections.Counter:
    """Transactions each site coordinated (by kind and outcome) and records stored (by type)."""
    seen: collections.Counter = collections.Counter()
    for k in range(sites.count):
        with urllib.request.urlopen(f"{sites.urls[k]}/metrics", timeout=10) as response:
            for line in response.read().decode().splitlines():
                if line.startswith("photos_transactions_total{"):
                    labels = dict(part.split("=") for part in line.split("{")[1].split("}")[0].split(","))
                    seen[f"txn {labels['kind'].strip(chr(34))} {labels['outcome'].strip(chr(34))}"] += int(
                        float(line.split()[-1]))
        db = sites.data_dir / f"site-{k}" / "events.sqlite"
        with sqlite3.connect(db) as connection:
            for topic, n in connection.execute("SELECT topic, count(*) FROM stored_events GROUP BY topic"):
                seen[f"record {topic.rsplit(':', 1)[-1]}"] += n
    return seen


async def phase(sites: h.Sites, kind: str, seconds: float, pop: bench_scale.Population,
                cookies: list[str], rng: random.Random) -> str:
    with_photos = [e for e in pop.events if e[1]]
    every, by_id = pop.all_event_ids(), dict(pop.events)
    async with h.new_session(limit=32) as session:
        async def one(_client: int) -> str:
            url = sites.urls[rng.randrange(sites.count)]
            if kind == "read":
                event_id = rng.choice(every)
                status, body = await h.get(session, f"{url}/api/events/{event_id}",
                                           rng.choice(by_id.get(event_id) or cookies))
                h.expect(status, body, 200, kind)
            elif kind == "upload":
                event_id, users = rng.choice(with_photos)
                pop.seed += 1
                status, body = await h.upload(session, url, event_id, h.tiny_jpeg(10**9 + pop.seed), rng.choice(users))
                h.expect(status, body, 201, kind)
            else:
                status, body = await h.post_json(session, f"{url}/api/events", {"title": "kinds"}, rng.choice(cookies))
                h.expect(status, body, 201, kind)
            return kind

        processes = [sites.process(k) for k in range(sites.count)]
        before, cpu_before = counts(sites), h.cpu_seconds(processes)
        samples, errors, measured_s, done = await h.closed_loop(16, seconds, one, warmup_s=0.5)
        cpu = h.cpu_seconds(processes) - cpu_before  # warm-up included: per request of all done
        added = counts(sites) - before
    p50, _ = h.p50_p99_ms([s for _, s in samples])
    what = ", ".join(f"{key} {n}" for key, n in sorted(added.items()))
    return (f"{kind:6s}  {len(samples) / measured_s:7.1f} req/s  p50 {p50:7.1f} ms  "
            f"server CPU {1000 * cpu / max(1, done):6.2f} ms/request  errors {sum(errors.values())}  "
            f"load {weather.load()}\n        added: {what or 'nothing'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per kind")
    parser.add_argument("--kinds", default="read,upload,create", help="in this order, comma-separated")
    parser.add_argument("--checkout", type=Path, default=h.ROOT, help="the code to run (default: this one)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a settings.toml line (e.g. max_actors=256)")
    parser.add_argument("--profile", choices=profiling.PROFILE_MODES,
                        help=f"over the measured kinds only: {profiling.PROFILE_HELP}")
    args = parser.parse_args()
    kinds = args.kinds.split(",")
    if not set(kinds) <= {"read", "upload", "create"}:
        parser.error("kinds are read, upload and create")
    print(f"machine: {weather.machine()}", flush=True)
    populate = argparse.Namespace(events=args.events, photo_fraction=0.2, users_min=3, users_max=10,
                                  clients=16, max_populate_s=600.0)
    profiles = profiling.site_profiles(args.profile)
    sites = h.Sites(4, root=args.checkout.resolve(), settings=dict(kv.split("=", 1) for kv in args.set),
                    env=profiles.env if profiles else None).start()
    try:
        secret = h.cookie_secret(sites.settings_path)
        cookies = [h.mint_cookie(secret) for _ in range(3000)]
        pop = bench_scale.Population()
        seconds, _ = asyncio.run(bench_scale.populate(sites, populate, cookies, pop))
        print(f"populated: {len(pop.all_event_ids())} events, {pop.photos} photos in {seconds:.0f} s", flush=True)
        rng = random.Random(5)
        if profiles:
            profiles.start(sites)
        for kind in kinds:
            print(asyncio.run(phase(sites, kind, args.seconds, pop, cookies, rng)), flush=True)
        if profiles:
            profiles.finish()
    finally:
        sites.stop()
    if profiles:
        profiles.show(f"requests of kinds {','.join(kinds)}")
    print(f"at the end: {weather.conditions()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
