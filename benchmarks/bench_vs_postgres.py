"""Create-event two-phase commit across 4 sites, beside PostgreSQL's own 2PC across 4 servers.

    python benchmarks/bench_vs_postgres.py [--store sqlite|postgres|both] [--duration 20]
                                           [--clients 16] [--slices 4] [--repeat 1]

(a) ours: 4 sites started by launcher.py on a scratch directory; POST /api/events (a full 2PC:
    the home site coordinates, every site prepares and commits, each step durably stored)
    - p50/p99 with 1 client, sequential, kept-alive connections, sites taken in turn;
    - throughput (and p50/p99) with --clients concurrent clients (asyncio + aiohttp), each
      request to the next site in turn.
(b) PostgreSQL: 4 local servers (Debian's PostgreSQL, 127.0.0.1, fsync on, synchronous_commit
    on, max_prepared_transactions 64) started here; per transaction, on each server in turn:
    BEGIN; INSERT an event row (uuid, title); PREPARE TRANSACTION 'gid'; then COMMIT PREPARED
    'gid' on each. psycopg 3, sync, one connection per server per client; clients are threads.
(c) both, and the ratios: p50 ours / PostgreSQL (goal <= 2), throughput ours / PostgreSQL
    (goal >= 1).
(d) --store postgres: our sites keep their event stores on PostgreSQL (one database per site
    on one extra local server) instead of SQLite; --store both runs the two.

This machine is shared: other people's processes take CPU, and its disk flush (fdatasync) swings
between ~0.1 ms and ~4 ms with their I/O. So both systems run side by side and each row's
--duration seconds are cut into --slices slices that alternate between PostgreSQL and ours (who
goes first alternates too), each after a 0.5 s warm-up not counted: both see the same weather.
A thread probes fdatasync once a second; each row shows the median it saw during that row, and
the 1-minute load average after each slice. CPU seconds used by the servers (our 4 site
processes, plus the PostgreSQL server holding their stores with --store postgres; every process
of the 4 PostgreSQL 2PC servers) and by this client are counted per transaction: "2 cores / server CPU" is
the throughput two cores could carry if the servers had them to themselves (CPU bound only).
Everything is started and stopped here; nothing listens beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h  # noqa: E402
import _profiles as profiling  # noqa: E402
import _weather as weather  # noqa: E402
from gil_profile import GilProfiles  # noqa: E402

WARMUP_S = 0.5


class FsyncWatch(h.Background):
    """fdatasync latency (median of 3) once a second, in a thread, with the time it was seen."""

    def __init__(self):
        super().__init__()
        self.seen: list[tuple[float, float]] = []

    def sample(self) -> None:
        self.seen.append((time.perf_counter(), weather.fsync_ms(3)))

    def median(self, spans: list[tuple[float, float]]) -> float:
        values = [ms for t, ms in self.seen if any(a <= t <= b for a, b in spans)]
        return statistics.median(values) if values else float("nan")


# --- ours -------------------------------------------------------------------------------------
def server_processes(sites: h.Sites, store_pg) -> list:
    """Our 4 site processes, and the PostgreSQL server holding their stores if there is one."""
    return [sites.process(k) for k in range(sites.count)] + (h.postgres_processes(store_pg) if store_pg else [])


async def ours_slice(sites: h.Sites, clients: int, seconds: float, store_pg=None) -> dict:
    secret = h.cookie_secret(sites.settings_path)
    cookies = [h.mint_cookie(secret) for _ in range(clients)]
    turn = itertools.count()
    servers = server_processes(sites, store_pg)
    me = [h.psutil.Process()]
    async with h.new_session(limit=clients * 2) as session:
        async def one(client: int) -> str:
            n = next(turn)
            status, body = await h.post_json(session, f"{sites.urls[n % sites.count]}/api/events",
                                             {"title": f"bench {n}"}, cookies[client])
            h.expect(status, body, 201, "create event")
            return "create"

        gc0 = await h.collector_seconds(session, sites)
        cpu0, client0 = h.cpu_seconds(servers), h.cpu_seconds(me)
        started = time.perf_counter()
        samples, errors, measured, done = await h.closed_loop(clients, seconds, one, WARMUP_S)
        ended = time.perf_counter()
        # processes that started during the slice (new PostgreSQL backends) count from zero
        new = [p for p in server_processes(sites, store_pg) if p.pid not in {q.pid for q in servers}]
        cpu = (h.cpu_seconds(servers + new) - cpu0, h.cpu_seconds(me) - client0)
        gc1 = await h.collector_seconds(session, sites)
    return {"times": [s for _, s in samples], "seconds": measured, "done": done, "server_cpu": cpu[0],
            "client_cpu": cpu[1], "errors": errors, "span": (started + WARMUP_S, ended),
            "load1": h.os.getloadavg()[0], "gc_cpu": None if gc0 is None or gc1 is None else gc1 - gc0}


# --- PostgreSQL's own 2PC -----------------------------------------------------------------------
SCHEMA = "CREATE TABLE events (id uuid PRIMARY KEY, title text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"


def pg_connect(servers) -> list:
    import psycopg

    return [psycopg.connect(host="127.0.0.1", port=s.port, user="postgres", dbname="postgres",
                            autocommit=True) for s in servers]


def pg_transaction(connections, n: int) -> None:
    gid = uuid.uuid4().hex
    event_id = uuid.uuid4()
    for c in connections:  # prepare phase, one server after the other
        c.execute("BEGIN")
        c.execute("INSERT INTO events (id, title) VALUES (%s, %s)", (event_id, f"bench {n}"))
        c.execute(f"PREPARE TRANSACTION '{gid}'")
    for c in connections:  # commit phase
        c.execute(f"COMMIT PREPARED '{gid}'")


def pg_slice(servers, clients: int, seconds: float) -> dict:
    samples: list[list[float]] = [[] for _ in range(clients)]
    errors: dict[str, int] = {}
    done = [0] * clients
    turn = itertools.count()
    go = threading.Barrier(clients + 1)
    finished = threading.Barrier(clients + 1)
    bounds = {}

    def client(i: int) -> None:
        connections = pg_connect(servers)
        try:
            go.wait()
            measure_from, stop_at = bounds["from"], bounds["to"]
            while True:
                began = time.perf_counter()
                if began >= stop_at:
                    return
                try:
                    pg_transaction(connections, next(turn))
                except Exception as e:
                    if began >= measure_from:
                        errors[str(e)[:120]] = errors.get(str(e)[:120], 0) + 1
                    continue
                done[i] += 1
                if began >= measure_from:
                    samples[i].append(time.perf_counter() - began)
        finally:
            finished.wait()  # the servers' CPU is read while every backend still runs
            for c in connections:
                c.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    me = [h.psutil.Process()]
    while go.n_waiting < clients:  # every client connected: its backend exists
        time.sleep(0.01)
    processes = [p for s in servers for p in h.postgres_processes(s)]
    cpu0, client0 = h.cpu_seconds(processes), h.cpu_seconds(me)
    started = time.perf_counter()
    bounds["from"], bounds["to"] = started + WARMUP_S, started + WARMUP_S + seconds
    go.wait()
    while finished.n_waiting < clients:
        time.sleep(0.01)
    ended = time.perf_counter()
    cpu = (h.cpu_seconds(processes) - cpu0, h.cpu_seconds(me) - client0)
    finished.wait()
    for t in threads:
        t.join()
    return {"times": [s for per in samples for s in per], "seconds": ended - bounds["from"], "done": sum(done),
            "server_cpu": cpu[0], "client_cpu": cpu[1], "errors": errors, "span": (bounds["from"], ended),
            "load1": h.os.getloadavg()[0]}


def start_pg_2pc_servers() -> list:
    servers = []
    for _ in range(4):
        servers.append(h.postgres_server(max_prepared_transactions=64, max_connections=100))
    for c in pg_connect(servers):
        c.execute(SCHEMA)
        c.close()
    return servers


# --- one comparison -------------------------------------------------------------------------------
def combine(parts: list[dict], clients: int, watch: FsyncWatch) -> dict:
    times = [t for p in parts for t in p["times"]]
    done = max(1, sum(p["done"] for p in parts))
    p50, p99 = h.p50_p99_ms(times)
    errors: dict[str, int] = {}
    for p in parts:
        for k, n in p["errors"].items():
            errors[k] = errors.get(k, 0) + n
    p50s = [statistics.median(p["times"]) * 1000 if p["times"] else float("nan") for p in parts]
    rates = [len(p["times"]) / p["seconds"] for p in parts]
    slice_p50 = "/".join(f"{v:.0f}" for v in p50s)
    return {"clients": clients, "n": len(times), "per_s": len(times) / sum(p["seconds"] for p in parts),
            "p50": p50, "p99": p99, "errors": sum(errors.values()), "error_kinds": errors,
            "server_cpu_ms": 1000 * sum(p["server_cpu"] for p in parts) / done,
            "client_cpu_ms": 1000 * sum(p["client_cpu"] for p in parts) / done,
            "gc_cpu_ms": (1000 * sum(p["gc_cpu"] for p in parts) / done
                          if all(p.get("gc_cpu") is not None for p in parts) else None),
            "fsync": watch.median([p["span"] for p in parts]), "slice_p50": slice_p50,
            "p50s": p50s, "rates": rates,
            "load": "/".join(f"{p['load1']:.1f}" for p in parts)}


def compare(sites: h.Sites, pg_servers: list | None, args, watch: FsyncWatch, store_pg=None) -> dict:
    """Rows 'pg seq', 'ours seq', 'pg conc', 'ours conc', each over args.slices alternating slices."""
    part = args.duration / args.slices
    parts: dict[str, list[dict]] = {"pg seq": [], "ours seq": [], "pg conc": [], "ours conc": []}
    for i in range(args.slices):
        for mode, clients in (("seq", 1), ("conc", args.clients)):
            order = ("pg", "ours") if i % 2 == 0 else ("ours", "pg")
            for system in order:
                if system == "pg" and pg_servers is None:
                    continue
                if system == "pg":
                    parts[f"pg {mode}"].append(pg_slice(pg_servers, clients, part))
                else:
                    parts[f"ours {mode}"].append(asyncio.run(ours_slice(sites, clients, part, store_pg)))
    return {key: combine(value, 1 if key.endswith("seq") else args.clients, watch)
            for key, value in parts.items() if value}


# --- profiling ----------------------------------------------------------------------------------
def profile_ours(store: str, args) -> None:
    profiles = GilProfiles() if args.profile == "gil" else profiling.SiteProfiles(args.profile)
    pg = None
    try:
        database = "sqlite"
        if store == "postgres":
            pg, database = store_server()
        with h.running_sites(4, database, env=profiles.env) as sites:
            profiles.start(sites)
            with FsyncWatch() as watch:
                result = combine([asyncio.run(ours_slice(sites, args.clients, args.duration, pg))], args.clients, watch)
            profiles.finish()
    finally:
        if pg is not None:
            pg.stop()
    stop = " (and the stop)" if profiles.includes_stop else ""
    profiles.show(f"the {args.clients}-client create-event load{stop}, {store} store")
    collector = "" if result["gc_cpu_ms"] is None else f", of it the collector {result['gc_cpu_ms']:.2f}"
    print(f"\n(under the profiler: {result['per_s']:.0f} txn/s, p50 {result['p50']:.0f} ms, "
          f"server CPU {result['server_cpu_ms']:.1f} ms/txn{collector}; load {result['load']})")


def store_server():
    pg = h.postgres_server(max_connections=200)
    for k in range(4):
        pg.create_database(f"photos_site{k}")
    return pg, pg.url("photos_site{site}")


# --- report -----------------------------------------------------------------------------------
def row(name: str, r: dict) -> list:
    return [name, r["clients"], r["n"], f"{r['per_s']:.0f}", f"{r['p50']:.2f}", f"{r['p99']:.2f}",
            r["slice_p50"], r["errors"], f"{r['server_cpu_ms']:.2f}", f"{r['client_cpu_ms']:.2f}",
            f"{2000 / r['server_cpu_ms']:.0f}", f"{r['fsync']:.2f}", r["load"]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("sqlite", "postgres", "both"), default="sqlite",
                        help="our sites' event store (default sqlite)")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per row")
    parser.add_argument("--slices", type=int, default=4, help="alternating slices per row")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=1, help="repeat every comparison (noisy machine)")
    parser.add_argument("--skip-postgres-2pc", action="store_true", help="only our sites")
    parser.add_argument("--profile", choices=("wall", "cpu", "gil"),
                        help="instead of the table: run only our sites' concurrent load, each site "
                             "under benchmarks/profile_site.py (wall: where threads are, sampled; "
                             "cpu: cProfile on a per-thread CPU clock) or sampled by py-spy (gil: "
                             "interpreter time, benchmarks/gil_profile.py), and print the profiles")
    weather.add_quiet_arguments(parser)
    args = parser.parse_args()
    stores = ("sqlite", "postgres") if args.store == "both" else (args.store,)
    print(f"machine: {weather.machine()}", flush=True)
    if args.profile:
        for store in stores:
            profile_ours(store, args)
        return 0

    rows, ratios, notes = [], [], []
    pg_servers = None if args.skip_postgres_2pc else start_pg_2pc_servers()
    try:
        with FsyncWatch() as watch:
            for store in stores:
                store_pg = None
                try:
                    database = "sqlite"
                    if store == "postgres":
                        store_pg, database = store_server()
                    with h.running_sites(4, database) as sites:
                        for rep in range(args.repeat):
                            tag = f" #{rep + 1}" if args.repeat > 1 else ""
                            notes.append(f"{store}{tag}: " + weather.wait_quiet(args.wait_quiet, args.wait_quiet_max_s))
                            print(notes[-1], flush=True)
                            r = compare(sites, pg_servers, args, watch, store_pg)
                            for key, label in (("pg seq", "PostgreSQL 2PC, 4 servers"), ("ours seq", f"ours, {store} store"),
                                               ("pg conc", "PostgreSQL 2PC, 4 servers"), ("ours conc", f"ours, {store} store")):
                                if key in r:
                                    rows.append(row(label + tag, r[key]))
                                    print("  ".join(map(str, rows[-1])), flush=True)
                                    for kind, n in r[key]["error_kinds"].items():
                                        print(f"  error x{n}: {kind}")
                            if "pg seq" in r:
                                # paired: each slice of ours against the PostgreSQL slice next to it
                                p50 = statistics.median(o / p for o, p in zip(r["ours seq"]["p50s"], r["pg seq"]["p50s"]))
                                tput = statistics.median(o / p for o, p in zip(r["ours conc"]["rates"], r["pg conc"]["rates"]))
                                pooled = r["ours seq"]["p50"] / r["pg seq"]["p50"]
                                cpu = r["ours conc"]["server_cpu_ms"] / r["pg conc"]["server_cpu_ms"]
                                ratios.append([f"{store}{tag}", f"{p50:.2f}", f"{pooled:.2f}", "yes" if p50 <= 2 else "no",
                                               f"{tput:.3f}", "yes" if tput >= 1 else "no", f"{cpu:.1f}"])
                finally:
                    if store_pg is not None:
                        store_pg.stop()
    finally:
        for s in pg_servers or []:
            s.stop()

    print()
    print(f"create-event 2PC across 4 sites vs PostgreSQL PREPARE/COMMIT PREPARED across 4 servers; "
          f"{args.duration:g} s per row in {args.slices} alternating slices")
    print(h.table(["system", "clients", "txns", "txn/s", "p50 ms", "p99 ms", "p50 by slice", "errors",
                   "server CPU ms/txn", "client CPU ms/txn", "2 cores / server CPU = txn/s",
                   "fsync ms (median during)", "1-min load after each slice"], rows, "<>>>>>>>>>>><"))
    if ratios:
        print()
        print(h.table(["our store", "p50 ours/PG (1 client, median of slice pairs)", "(pooled)", "<= 2?",
                       f"txn/s ours/PG ({args.clients} clients, slice pairs)", ">= 1?",
                       "server CPU per txn ours/PG"], ratios, "<>>>>>>"))
        print("PostgreSQL's p50 at 1 client is ~8 flushes in a row: ~2-3 ms when the disk's flushes are "
              "fast, ~25-30 ms when they are throttled (~4 ms each); see the slices.")
    print(f"\nat the end: {weather.conditions()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
