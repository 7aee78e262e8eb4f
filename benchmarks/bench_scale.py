"""Scale: thousands of events across 4 sites; memory, threads, a mixed load, restart-to-ready.

    python benchmarks/bench_scale.py [--events 10000] [--photo-fraction 1.0] [--load-s 30]
                                     [--clients 16] [--max-populate-s 1200] [--store sqlite|postgres]

1. Populate through the real API (no shortcut into the stores): --events events, homes spread
   over the 4 sites; each gets 3-10 users (drawn from a pool of identity cookies) and, for
   --photo-fraction of the events, every one of those users uploads one tiny distinct JPEG
   (64x48) at a random site: each upload is a 2PC carrying the photo to every site. --clients
   workers run at once, each one event at a time (create, then its uploads in turn). Stops
   early at --max-populate-s and says so (the rest is then measured at the N reached).
2. Per site: resident memory (RSS) and threads of the site process (psutil), after populating
   and after the actors' idle sweep; events held; records in the store; files.
3. Mixed load for --load-s seconds, --clients concurrent clients: 80% GET /api/events/{id} for
   a random event at a random site (with one of its users' cookies), 15% uploads of a tiny photo
   by one of the event's users at a random site, 5% creates. Requests/s and p50/p99 per kind;
   peak RSS and threads per site sampled every 0.5 s during the load.
4. Restart-to-ready of one site holding them (--restart-site, default 3): SIGTERM it (time to
   exit), start it again as `launcher.py --only K` does (`python -m web.site ...`), time until
   `GET /api/status` answers 200 (polled every 10 ms); then the same after SIGKILL. The same
   restart on the empty store, before populating, is the floor (interpreter and imports).
5. With the sites stopped: SiteStore open + start-up log scan of that site in this process,
   timed, and profiled with cProfile (top functions), since start-up reads the whole log.
Goals (issue 6): 10,000 events with at most 300 MB resident and 64 threads per site; a site
ready within 5 s of starting however many events it holds.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import random
import signal
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h  # noqa: E402
import _profiles as profiling  # noqa: E402
import _weather as weather  # noqa: E402


class Population:
    def __init__(self):
        self.events: list[tuple[str, list[str]]] = []  # (event id, cookies of its submitters)
        self.bare: list[str] = []  # events created with no photos
        self.create_s: list[float] = []
        self.upload_s: list[float] = []
        self.errors: dict[str, int] = {}
        self.photos = 0
        self.seed = 0

    def all_event_ids(self) -> list[str]:
        return [e for e, _ in self.events] + self.bare

    def error(self, text: str) -> None:
        self.errors[text[:120]] = self.errors.get(text[:120], 0) + 1


async def create(session, sites: h.Sites, site: int, title: str, cookie: str, pop: Population) -> str:
    started = time.perf_counter()
    status, body = await h.post_json(session, f"{sites.urls[site]}/api/events", {"title": title}, cookie)
    h.expect(status, body, 201, "create")
    pop.create_s.append(time.perf_counter() - started)
    return body["event_id"]


async def upload_tiny(session, sites: h.Sites, event_id: str, cookie: str, pop: Population,
                      rng: random.Random) -> None:
    pop.seed += 1
    jpeg = h.tiny_jpeg(pop.seed * 7919 + rng.randrange(1 << 30))
    started = time.perf_counter()
    status, body = await h.upload(session, sites.urls[rng.randrange(sites.count)], event_id, jpeg, cookie)
    h.expect(status, body, 201, "upload")
    pop.upload_s.append(time.perf_counter() - started)
    pop.photos += 1


async def populate(sites: h.Sites, args, cookies: list[str], pop: Population) -> tuple[float, bool]:
    """Returns (seconds, finished)."""
    next_event = iter(range(args.events))
    deadline = time.perf_counter() + args.max_populate_s
    started = time.perf_counter()
    progress_at = [started]

    async def worker(w: int) -> None:
        wrng = random.Random(w)
        async with h.new_session(limit=8) as session:
            for i in next_event:
                if time.perf_counter() > deadline:
                    return
                users = wrng.sample(cookies, wrng.randint(args.users_min, args.users_max))
                try:
                    event_id = await create(session, sites, i % sites.count, f"scale {i}", users[0], pop)
                except Exception as e:
                    pop.error(str(e))
                    continue
                if wrng.random() < args.photo_fraction:
                    done = []
                    for cookie in users:
                        try:
                            await upload_tiny(session, sites, event_id, cookie, pop, wrng)
                            done.append(cookie)
                        except Exception as e:
                            pop.error(str(e))
                    pop.events.append((event_id, done))
                else:
                    pop.bare.append(event_id)
                now = time.perf_counter()
                if now - progress_at[0] > 30:
                    progress_at[0] = now
                    n = len(pop.events) + len(pop.bare)
                    print(f"  populating: {n} events, {pop.photos} photos, {now - started:.0f} s, "
                          f"{n / (now - started):.1f} events/s, load {weather.load()}", flush=True)

    await asyncio.gather(*(worker(w) for w in range(args.clients)))
    n = len(pop.events) + len(pop.bare)
    return time.perf_counter() - started, n >= args.events


class Sampler(h.Background):
    """Peak RSS and threads per site, sampled every interval in a thread."""

    interval = 0.5

    def __init__(self, sites: h.Sites):
        super().__init__()
        self.sites = sites
        self.peak_rss = [0.0] * sites.count
        self.peak_threads = [0] * sites.count

    def sample(self) -> None:
        for k in range(self.sites.count):
            try:
                rss, threads = self.sites.resources(k)
            except Exception:
                continue
            self.peak_rss[k] = max(self.peak_rss[k], rss)
            self.peak_threads[k] = max(self.peak_threads[k], threads)


async def mixed_load(sites: h.Sites, args, pop: Population, cookies: list[str]) -> dict:
    rng = random.Random(11)
    with_photos = [e for e in pop.events if e[1]]
    every = pop.all_event_ids()
    by_id = dict(pop.events)
    created = []

    async with h.new_session(limit=args.clients * 2) as session:
        async def one(client: int) -> str:
            r = rng.random()
            site = rng.randrange(sites.count)
            if r < 0.80:
                event_id = rng.choice(every)
                users = by_id.get(event_id) or [rng.choice(cookies)]
                status, body = await h.get(session, f"{sites.urls[site]}/api/events/{event_id}", rng.choice(users))
                h.expect(status, body, 200, "read")
                return "read  GET /api/events/{id}"
            if r < 0.95 and with_photos:
                event_id, users = rng.choice(with_photos)
                pop.seed += 1
                status, body = await h.upload(session, sites.urls[site], event_id,
                                              h.tiny_jpeg(10**9 + pop.seed), rng.choice(users))
                h.expect(status, body, 201, "upload")
                return "upload tiny photo (2PC)"
            status, body = await h.post_json(session, f"{sites.urls[site]}/api/events",
                                             {"title": "load"}, rng.choice(cookies))
            h.expect(status, body, 201, "create")
            created.append(body["event_id"])
            return "create event (2PC)"

        processes = [sites.process(k) for k in range(sites.count)]
        cpu_before, wall_before = h.cpu_seconds(processes), time.perf_counter()
        with Sampler(sites) as sampler:
            samples, errors, seconds, done = await h.closed_loop(args.clients, args.load_s, one, warmup_s=1.0)
        cpu = h.cpu_seconds(processes) - cpu_before  # warm-up included: per request of all done
    return {"samples": samples, "errors": errors, "seconds": seconds, "peak_rss": sampler.peak_rss,
            "peak_threads": sampler.peak_threads, "load": weather.load(), "created": created,
            "cpu_ms_per_request": 1000 * cpu / max(1, done),
            "cpu_busy": cpu / (time.perf_counter() - wall_before)}


def site_facts(sites: h.Sites, k: int) -> dict:
    site_dir = sites.data_dir / f"site-{k}"
    facts = {"records": "", "db_mb": ""}
    db = site_dir / "events.sqlite"
    if db.exists():
        size = sum(p.stat().st_size for p in site_dir.glob("events.sqlite*"))
        facts["db_mb"] = f"{size / 2**20:.0f}"
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
                facts["records"] = conn.execute("SELECT max(rowid) FROM stored_events").fetchone()[0]
        except sqlite3.Error as e:
            facts["records"] = f"? ({e})"
    photos = site_dir / "photos"
    facts["photos"] = sum(1 for _ in photos.iterdir()) if photos.exists() else 0
    return facts


def status_events(sites: h.Sites, k: int):
    import json
    import urllib.request

    try:
        with urllib.request.urlopen(sites.urls[k] + "/api/status", timeout=10) as r:
            return json.loads(r.read())["events"]
    except OSError:
        return "?"


def resources_rows(sites: h.Sites, label: str) -> list[list]:
    rows = []
    for k in range(sites.count):
        rss, threads = sites.resources(k)
        rows.append([label, k, f"{rss:.0f}", threads, status_events(sites, k), weather.load()])
    return rows


def restart(sites: h.Sites, k: int, sig: int, label: str) -> list:
    exit_s = sites.stop_site(k, sig)
    load_before = weather.load()
    ready_s = sites.start_site(k)
    rss, threads = sites.resources(k)
    return [label, k, signal.Signals(sig).name, f"{exit_s * 1000:.0f}", f"{ready_s:.2f}", f"{rss:.0f}",
            threads, status_events(sites, k), load_before]


def profile_startup(sites: h.Sites, k: int) -> str:
    from eventstore.store import SiteStore
    from web.settings import load_settings

    settings = load_settings(sites.settings_path, data_dir=sites.data_dir, site_count=sites.count)
    url, site_dir = settings.database_url(k), settings.site_dir(k)
    started = time.perf_counter()
    store = SiteStore(url, site_dir)
    opened = time.perf_counter()
    scan = store.scan()
    scanned = time.perf_counter()
    store.close()
    out = [f"site {k}: SiteStore() {1000 * (opened - started):.0f} ms, scan() {1000 * (scanned - opened):.0f} ms "
           f"({len(scan.logged)} events logged, {len(scan.participants_in_doubt)} in doubt); load {weather.load()}"]
    profiler = cProfile.Profile()
    profiler.enable()
    store = SiteStore(url, site_dir)
    store.scan()
    store.close()
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(12)
    lines = [ln for ln in text.getvalue().splitlines() if ln.strip()]
    start = next(i for i, ln in enumerate(lines) if "function calls" in ln)
    out += lines[start:start + 16]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--photo-fraction", type=float, default=1.0,
                        help="fraction of events whose users upload photos (the rest: created only)")
    parser.add_argument("--users-min", type=int, default=3)
    parser.add_argument("--users-max", type=int, default=10)
    parser.add_argument("--user-pool", type=int, default=3000, help="identity cookies to draw users from")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--load-s", type=float, default=30.0)
    parser.add_argument("--max-populate-s", type=float, default=1200.0)
    parser.add_argument("--restart-site", type=int, default=3)
    parser.add_argument("--idle-wait-s", type=float, default=25.0,
                        help="after populating, wait for the actors' idle sweep (idle_s 10 s)")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--profile-load", choices=("wall", "cpu"),
                        help="run every site under benchmarks/profile_site.py, count the mixed load "
                             "only, and print each site's profile (the figures are then not comparable)")
    weather.add_quiet_arguments(parser)
    args = parser.parse_args()
    print(f"machine: {weather.machine()}", flush=True)

    pg = None
    database = "sqlite"
    if args.store == "postgres":
        pg = h.postgres_server(max_connections=200)
        for k in range(4):
            pg.create_database(f"photos_site{k}")
        database = pg.url("photos_site{site}")
    profiles = profiling.SiteProfiles(args.profile_load) if args.profile_load else None
    sites = h.Sites(4, database, env=profiles.env if profiles else None)
    K = args.restart_site
    try:
        sites.start()
        secret = h.cookie_secret(sites.settings_path)
        cookies = [h.mint_cookie(secret) for _ in range(args.user_pool)]
        restarts = [restart(sites, K, signal.SIGTERM, "empty store (floor)")]
        base = resources_rows(sites, "empty, just started")

        pop = Population()
        print("populating: " + weather.wait_quiet(args.wait_quiet, args.wait_quiet_max_s), flush=True)
        print(f"populating {args.events} events ({args.photo_fraction:.0%} with photos), "
              f"{args.clients} workers ...", flush=True)
        populate_s, finished = asyncio.run(populate(sites, args, cookies, pop))
        n_events = len(pop.events) + len(pop.bare)
        after_pop = resources_rows(sites, "right after populating")
        time.sleep(args.idle_wait_s)
        idle = resources_rows(sites, f"idle {args.idle_wait_s:.0f} s later")
        facts = [site_facts(sites, k) for k in range(sites.count)]
        print(f"populated {n_events} events, {pop.photos} photos in {populate_s:.0f} s; running the mixed load",
              flush=True)

        print("mixed load: " + weather.wait_quiet(args.wait_quiet, args.wait_quiet_max_s), flush=True)
        if profiles:  # not the site restarted unprofiled (SIGUSR1 would end it)
            for k in range(sites.count):
                if k not in sites.restarted:
                    sites.process(k).send_signal(signal.SIGUSR1)
        load = asyncio.run(mixed_load(sites, args, pop, cookies))
        after_load = resources_rows(sites, "right after the load")
        print("restarts: " + weather.wait_quiet(args.wait_quiet, args.wait_quiet_max_s), flush=True)
        restarts.append(restart(sites, K, signal.SIGTERM, f"{n_events} events"))
        restarts.append(restart(sites, K, signal.SIGKILL, f"{n_events} events"))
        restarted_idle = [r for r in resources_rows(sites, "after the restarts") if r[1] == K]
    finally:
        sites_stopped = False
        try:
            sites.keep = True
            sites.stop()
            sites_stopped = True
            profile = "" if args.no_profile or not sites_stopped else profile_startup(sites, K)
        finally:
            import shutil

            shutil.rmtree(sites.scratch, ignore_errors=True)
            if pg is not None:
                pg.stop()

    # --- report ------------------------------------------------------------------------------
    print()
    print(f"== population: {n_events} events ({'all' if finished else 'STOPPED EARLY at --max-populate-s'}); "
          f"{len(pop.events)} with photos, {pop.photos} tiny photos; {args.users_min}-{args.users_max} users each; "
          f"{populate_s:.0f} s with {args.clients} workers = {n_events / populate_s:.1f} events/s, "
          f"{pop.photos / populate_s:.1f} uploads/s; store {args.store}")
    c50, c99 = h.p50_p99_ms(pop.create_s)
    u50, u99 = h.p50_p99_ms(pop.upload_s)
    print(f"   while populating: create p50 {c50:.0f} ms p99 {c99:.0f} ms; upload p50 {u50:.0f} ms p99 {u99:.0f} ms; "
          f"errors {sum(pop.errors.values())}")
    for text, n in pop.errors.items():
        print(f"   error x{n}: {text}")
    if n_events < args.events or args.events < 10_000:
        per_event = populate_s / max(1, n_events)
        print(f"   PROJECTION (not measured): populating 10,000 events like these would take "
              f"~{per_event * 10_000 / 60:.0f} min at this rate")

    print()
    print("== resident memory and threads per site (goal: <= 300 MB and <= 64 threads at 10,000 events)")
    print(h.table(["when", "site", "RSS MB", "threads", "events", "load 1/5/15"],
                  base + after_pop + idle + after_load + restarted_idle, "<>>>><"))
    print("   peak during the mixed load: " + "; ".join(
        f"site {k} {load['peak_rss'][k]:.0f} MB / {load['peak_threads'][k]} threads" for k in range(sites.count)))
    print("   store per site (before the load): " + "; ".join(
        f"site {k}: {f['records']} records, {f['db_mb']} MB db, {f['photos']} photo files"
        for k, f in enumerate(facts)))

    print()
    kinds: dict[str, list[float]] = {}
    for label, s in load["samples"]:
        kinds.setdefault(label, []).append(s)
    rows = []
    total = sum(len(v) for v in kinds.values())
    for label, times in sorted(kinds.items(), key=lambda kv: -len(kv[1])):
        p50, p99 = h.p50_p99_ms(times)
        rows.append([label, len(times), f"{len(times) / load['seconds']:.1f}", f"{p50:.1f}", f"{p99:.1f}"])
    all_times = [s for _, s in load["samples"]]
    p50, p99 = h.p50_p99_ms(all_times)
    rows.append(["all", total, f"{total / load['seconds']:.1f}", f"{p50:.1f}", f"{p99:.1f}"])
    print(f"== mixed load: {args.clients} clients, {load['seconds']:.0f} s over {n_events} events, 4 sites; "
          f"load average after {load['load']}")
    print(h.table(["request", "n", "req/s", "p50 ms", "p99 ms"], rows))
    print(f"   server CPU (4 site processes): {load['cpu_ms_per_request']:.2f} ms per request, "
          f"{load['cpu_busy']:.2f} cores busy on average")
    print(f"   errors: {sum(load['errors'].values())}")
    for text, n in load["errors"].items():
        print(f"   error x{n}: {text}")

    print()
    print("== restart-to-ready (goal: ready within 5 s of starting, however many events)")
    print(h.table(["store holds", "site", "signal", "exit ms", "ready s", "RSS MB", "threads", "events",
                   "load before start"], restarts, "<>>>>>>><"))
    if profile:
        print()
        print("== start-up work in-process (sites stopped), cProfile by own time:")
        print(profile)
    if profiles:  # site --restart-site was restarted unprofiled before the load: no profile
        profiles.show(f"the mixed load ({args.clients} clients, {args.load_s:.0f} s)")
    print(f"\nat the end: {weather.conditions()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
