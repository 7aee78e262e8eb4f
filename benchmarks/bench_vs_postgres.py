"""Create-event two-phase commit across 4 sites, beside PostgreSQL's own 2PC across 4 servers.

    python benchmarks/bench_vs_postgres.py [--store sqlite|postgres|both] [--duration 20]
                                           [--clients 16] [--repeat 1]

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
Each measurement lasts --duration seconds after a 1 s warm-up; the load average is printed
beside each. Everything is started and stopped here; nothing listens beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h  # noqa: E402

WARMUP_S = 1.0


# --- ours -------------------------------------------------------------------------------------
async def ours_sequential(sites: h.Sites, duration: float) -> dict:
    cookie = h.mint_cookie(h.cookie_secret(sites.settings_path))
    turn = itertools.count()
    async with h.new_session() as session:
        async def one(_client: int) -> str:
            n = next(turn)
            status, body = await h.post_json(session, f"{sites.urls[n % sites.count]}/api/events",
                                             {"title": f"bench {n}"}, cookie)
            h.expect(status, body, 201, "create event")
            return "create"

        return await _measured(sites, 1, duration, one)


async def ours_concurrent(sites: h.Sites, duration: float, clients: int) -> dict:
    secret = h.cookie_secret(sites.settings_path)
    cookies = [h.mint_cookie(secret) for _ in range(clients)]
    turn = itertools.count()
    async with h.new_session(limit=clients * 2) as session:
        async def one(client: int) -> str:
            n = next(turn)
            status, body = await h.post_json(session, f"{sites.urls[n % sites.count]}/api/events",
                                             {"title": f"bench {n}"}, cookies[client])
            h.expect(status, body, 201, "create event")
            return "create"

        return await _measured(sites, clients, duration, one)


async def _measured(sites: h.Sites, clients: int, duration: float, one) -> dict:
    fsync = h.fsync_ms()
    servers = [sites.process(k) for k in range(sites.count)]
    me = [h.psutil.Process()]
    cpu0, client0 = h.cpu_seconds(servers), h.cpu_seconds(me)
    samples, errors, seconds, done = await h.closed_loop(clients, duration, one, WARMUP_S)
    cpu = (h.cpu_seconds(servers) - cpu0, h.cpu_seconds(me) - client0)
    times = [s for _, s in samples]
    p50, p99 = h.p50_p99_ms(times)
    return {"clients": clients, "n": len(times), "per_s": len(times) / seconds, "p50": p50, "p99": p99,
            "errors": sum(errors.values()), "error_kinds": errors, "load": h.load(), "fsync": fsync,
            "server_cpu_ms": 1000 * cpu[0] / max(1, done), "client_cpu_ms": 1000 * cpu[1] / max(1, done)}


def run_ours(store: str, duration: float, clients: int, profile: str | None = None) -> tuple[dict, dict]:
    pg = None
    database = "sqlite"
    env, profile_dir = None, None
    if profile:  # every site runs with the sampling profiler of benchmarks/profile_site.py
        import tempfile

        profile_dir = Path(tempfile.mkdtemp(prefix="bench-profile-"))
        env = {"PHOTO_SITE_MODULE": "benchmarks.profile_site", "BENCH_PROFILE_DIR": str(profile_dir),
               "BENCH_PROFILE_MODE": profile}
    try:
        if store == "postgres":
            pg = h.postgres_server(max_connections=200)
            for k in range(4):
                pg.create_database(f"photos_site{k}")
            database = pg.url("photos_site{site}")
        with h.running_sites(4, database, env=env) as sites:
            if not profile:
                seq = asyncio.run(ours_sequential(sites, duration))
            else:
                seq = None
            if profile:
                import signal

                for k in range(sites.count):  # count from here: leave start-up out
                    sites.process(k).send_signal(signal.SIGUSR1)
            conc = asyncio.run(ours_concurrent(sites, duration, clients))
        if profile:
            for k in range(4):
                report = profile_dir / f"site-{k}.txt"
                print(f"\n== {profile} profile of site {k} ({store} store) over the {clients}-client "
                      f"create-event load (and the stop):")
                print(report.read_text() if report.exists() else "(no profile written)")
        return seq, conc
    finally:
        if pg is not None:
            pg.stop()


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


def pg_closed_loop(servers, clients: int, duration: float) -> dict:
    fsync = h.fsync_ms()
    samples: list[list[float]] = [[] for _ in range(clients)]
    errors: list[int] = [0] * clients
    turn = itertools.count()
    barrier = threading.Barrier(clients + 1)
    finished = threading.Barrier(clients + 1)
    bounds = {}
    done = [0] * clients

    def client(i: int) -> None:
        connections = pg_connect(servers)
        try:
            barrier.wait()
            measure_from, stop_at = bounds["from"], bounds["to"]
            while True:
                began = time.perf_counter()
                if began >= stop_at:
                    return
                try:
                    pg_transaction(connections, next(turn))
                except Exception:
                    if began >= measure_from:
                        errors[i] += 1
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
    while barrier.n_waiting < clients:  # every client connected: its backend exists
        time.sleep(0.01)
    processes = [p for s in servers for p in h.postgres_processes(s)]
    cpu0, client0 = h.cpu_seconds(processes), h.cpu_seconds(me)
    start = time.perf_counter()
    bounds["from"], bounds["to"] = start + WARMUP_S, start + WARMUP_S + duration
    barrier.wait()
    while finished.n_waiting < clients:
        time.sleep(0.01)
    cpu = (h.cpu_seconds(processes) - cpu0, h.cpu_seconds(me) - client0)
    measured = time.perf_counter() - bounds["from"]
    finished.wait()
    for t in threads:
        t.join()
    times = [s for per in samples for s in per]
    p50, p99 = h.p50_p99_ms(times)
    return {"clients": clients, "n": len(times), "per_s": len(times) / measured, "p50": p50, "p99": p99,
            "errors": sum(errors), "error_kinds": {}, "load": h.load(), "fsync": fsync,
            "server_cpu_ms": 1000 * cpu[0] / max(1, sum(done)), "client_cpu_ms": 1000 * cpu[1] / max(1, sum(done))}


def run_postgres(duration: float, clients: int) -> tuple[dict, dict]:
    servers = []
    try:
        for _ in range(4):
            servers.append(h.postgres_server(max_prepared_transactions=64, max_connections=100))
        for c in pg_connect(servers):
            c.execute(SCHEMA)
            c.close()
        seq = pg_closed_loop(servers, 1, duration)
        conc = pg_closed_loop(servers, clients, duration)
        return seq, conc
    finally:
        for s in servers:
            s.stop()


# --- report -----------------------------------------------------------------------------------
def row(name: str, r: dict) -> list:
    return [name, r["clients"], r["n"], f"{r['per_s']:.0f}", f"{r['p50']:.2f}", f"{r['p99']:.2f}",
            r["errors"], f"{r['server_cpu_ms']:.2f}", f"{r['client_cpu_ms']:.2f}",
            f"{2000 / r['server_cpu_ms']:.0f}", f"{r['fsync']:.2f}", r["load"]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("sqlite", "postgres", "both"), default="sqlite",
                        help="our sites' event store (default sqlite)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per measurement")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=1, help="repeat every measurement (noisy machine)")
    parser.add_argument("--skip-postgres-2pc", action="store_true", help="only our sites")
    parser.add_argument("--profile", choices=("wall", "cpu"),
                        help="instead of the table: run only our sites' concurrent load, each site "
                             "under benchmarks/profile_site.py (wall: where threads are, sampled; "
                             "cpu: cProfile on a per-thread CPU clock), and print the profiles")
    h.add_quiet_arguments(parser)
    args = parser.parse_args()
    if args.profile:
        for store in ("sqlite", "postgres") if args.store == "both" else (args.store,):
            _, conc = run_ours(store, args.duration, args.clients, profile=args.profile)
            print(f"\n(under the profiler: {conc['per_s']:.0f} txn/s, p50 {conc['p50']:.0f} ms; load {conc['load']})")
        return 0
    stores = ("sqlite", "postgres") if args.store == "both" else (args.store,)

    print(f"machine: {h.machine()}", flush=True)
    header = ["system", "clients", "txns", "txn/s", "p50 ms", "p99 ms", "errors", "server CPU ms/txn",
              "client CPU ms/txn", "2 cores / server CPU = txn/s", "fsync ms before", "load 1/5/15 after"]
    rows, results = [], {}
    for rep in range(args.repeat):
        tag = f" #{rep + 1}" if args.repeat > 1 else ""
        if not args.skip_postgres_2pc:
            print("PostgreSQL 2PC: " + h.wait_quiet(args.wait_quiet, args.wait_quiet_max_s), flush=True)
            seq, conc = run_postgres(args.duration, args.clients)
            results.setdefault("pg", []).append((seq, conc))
            rows += [row(f"PostgreSQL 2PC, 4 servers{tag}", seq), row(f"PostgreSQL 2PC, 4 servers{tag}", conc)]
            print("\n".join("  ".join(map(str, r)) for r in rows[-2:]), flush=True)
        for store in stores:
            print(f"ours ({store}): " + h.wait_quiet(args.wait_quiet, args.wait_quiet_max_s), flush=True)
            seq, conc = run_ours(store, args.duration, args.clients)
            results.setdefault(store, []).append((seq, conc))
            name = f"ours, 4 sites, {store} store{tag}"
            rows += [row(name, seq), row(name, conc)]
            print("\n".join("  ".join(map(str, r)) for r in rows[-2:]), flush=True)
            for kind, n in {**seq["error_kinds"], **conc["error_kinds"]}.items():
                print(f"  error x{n}: {kind}")

    print()
    print(f"create-event 2PC across 4 sites vs PostgreSQL PREPARE/COMMIT PREPARED across 4 servers; "
          f"{args.duration:g} s per row")
    print(h.table(header, rows, "<>>>>>>>>>><"))
    if "pg" in results:
        print()
        ratio_rows = []
        for store in stores:
            for rep, ((oseq, oconc), (pseq, pconc)) in enumerate(zip(results[store], results["pg"])):
                tag = f" #{rep + 1}" if args.repeat > 1 else ""
                p50 = oseq["p50"] / pseq["p50"]
                tput = oconc["per_s"] / pconc["per_s"]
                ratio_rows.append([f"{store}{tag}", f"{p50:.2f}", "yes" if p50 <= 2 else "no",
                                   f"{tput:.2f}", "yes" if tput >= 1 else "no"])
        print(h.table(["our store", "p50 ours/PG (1 client)", "<= 2?",
                       f"txn/s ours/PG ({args.clients} clients)", ">= 1?"], ratio_rows, "<>>>>"))
    print(f"\nload average at the end: {h.load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
