"""The floor of the stack: create-event's 2PC across 4 sites, written as bare as possible.

    python benchmarks/bench_floor.py [--duration 10] [--clients 16] [--writes thread|inline|both]
                                     [--store sqlite|eventsourcing|recorder] [--actors none|site|txn]
                                     [--answer-after decision|acks] [--profile]

The service's libraries without its design: 4 site processes (`floor_site.py`: uvloop; an aiohttp
app with `POST /create` {"title": ...}), one WebSocket per directed pair of sites carrying
msgspec JSON frames (a list of [id, kind, txn, body]; replies on the same socket; a writer task
per socket sends what queued meanwhile as one frame), stdlib sqlite3 (WAL, synchronous=FULL).
No actors, no eventsourcing, no middlewares, no domain model. Our write pattern, 11 forced
writes per create: the site receiving the POST writes Began and sends Prepare to the 4 sites
(to itself by a direct call); each writes Prepared and answers Yes; the coordinator writes
Decided and answers 201 {"event_id"} (at the decision; `--answer-after acks` waits for the 4
Acks, as ours does), sends Commit; each writes Committed and answers Ack; then it writes Ended.
`--writes thread`: group commit, one writer thread per site inserts all that is queued in one
transaction, commits (the fsync) and resolves the futures on the loop; `inline`: a commit per
write on the event loop. Per mode: fresh sites, a closed loop of 1 client then --clients
(sites in turn), each after a 0.5 s warm-up: txn/s, p50, p99, server CPU per create summed over
the 4 site processes (warm-up included, as bench_vs_postgres), its kernel part and the part of
threads other than the event loop's, the client's CPU, commits (fsyncs) per create. Then every
site's log is checked (Prepared and Committed for every begun txn at every site, Began/Decided/
Ended once each). `--profile` runs site 0 under cProfile (event-loop thread, CPU clock).

The prescribed libraries, one at a time or together (what the stack costs before any design):
`--store eventsourcing` stores the same writes through the eventsourcing library's public API (an
aggregate per transaction, an event per write, `Application.save`), `--store recorder` through its
recorder (`insert_events` of stored events built directly, as our store does); `--actors site` makes every
write a turn of a long-lived Pykka actor per site and role (coordinator, participant), which
queues it for the writer thread (`--writes thread`: group commit) or stores it in its own thread
(`inline`: a commit per write), the answer coming back on the loop; `--actors txn` starts an
actor per transaction and role and stops it after its last write (a thread each).
Everything listens on 127.0.0.1 only, and is stopped and removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h  # noqa: E402
import _weather as weather  # noqa: E402
from floor_site import SITES  # noqa: E402

SITE_SCRIPT = Path(__file__).resolve().parent / "floor_site.py"  # one site process
WARMUP_S = 0.5


# --- the benchmark --------------------------------------------------------------------------------
def start_sites(scratch: Path, base: int, args, writes: str) -> list[subprocess.Popen]:
    procs = []
    for k in range(SITES):
        cmd = [sys.executable, str(SITE_SCRIPT), "--serve", str(k), "--base-port", str(base), "--dir", str(scratch),
               "--writes", writes, "--answer-after", args.answer_after, "--store", args.store, "--actors", args.actors] + (["--profile"] if args.profile and k == 0 else [])
        with open(scratch / f"site-{k}.err", "ab") as err:  # the child keeps its own copy
            procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err))
    deadline = time.monotonic() + 30
    for k in range(SITES):
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{base + k}/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if procs[k].poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"site {k} did not start:\n{(scratch / f'site-{k}.err').read_text()[-2000:]}")
            time.sleep(0.05)
    return procs


def stop_sites(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def cpu_split(servers) -> tuple[float, float]:
    """(kernel CPU, CPU of threads other than the event loop's) seconds of the site processes."""
    return (sum(p.cpu_times().system for p in servers),
            sum(t.user_time + t.system_time for p in servers for t in p.threads() if t.id != p.pid))


async def measure(urls: list[str], servers: list, clients: int, seconds: float) -> dict:
    turn = itertools.count()
    me = [h.psutil.Process()]
    async with h.new_session(limit=clients * 2) as session:
        async def one(_client: int) -> str:
            n = next(turn)
            status, body = await h.post_json(session, f"{urls[n % SITES]}/create", {"title": f"bench {n}"})
            h.expect(status, body, 201, "create")
            return "create"

        async def commits() -> int:
            return sum([(await (await session.get(f"{u}/stats")).json(content_type=None))["commits"] for u in urls])

        commits0, cpu0, split0, client0 = await commits(), h.cpu_seconds(servers), cpu_split(servers), h.cpu_seconds(me)
        samples, errors, measured, done = await h.closed_loop(clients, seconds, one, WARMUP_S)
        cpu, client_cpu = h.cpu_seconds(servers) - cpu0, h.cpu_seconds(me) - client0
        kernel, threads = (b - a for a, b in zip(split0, cpu_split(servers)))
        await asyncio.sleep(0.3)  # the last Commits/Ends are stored after the 201s
        fsyncs = await commits() - commits0
    times = [s for _, s in samples]
    p50, p99 = h.p50_p99_ms(times)
    n = max(1, done)
    return {"clients": clients, "n": len(times), "done": done, "per_s": len(times) / measured, "p50": p50,
            "p99": p99, "errors": errors, "server_ms": 1000 * cpu / n, "client_ms": 1000 * client_cpu / n,
            "kernel_ms": 1000 * kernel / n, "threads_ms": 1000 * threads / n,
            "fsyncs": fsyncs / n, "load": weather.load().split()[0]}


def site_writes(path: Path) -> list[tuple[str, str]]:
    """(txn, kind) of every write a site stored: its `log` table, or its eventsourcing events."""
    db = sqlite3.connect(path)
    try:
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'log'").fetchone():
            return db.execute("SELECT txn, kind FROM log").fetchall()
        txns, writes = {}, []
        for originator, state in db.execute(
                "SELECT originator_id, state FROM stored_events ORDER BY originator_id, originator_version"):
            data = json.loads(state)
            txns.setdefault(originator, data.get("txn"))
            writes.append((txns[originator], data["kind"]))
        return writes
    finally:
        db.close()


def check(scratch: Path, created: int) -> str:
    """Every begun txn Prepared and Committed at every site; Began/Decided/Ended once each."""
    coordinator = {"Began": 0, "Decided": 0, "Ended": 0}
    begun, per_site = set(), []
    for k in range(SITES):
        writes = site_writes(scratch / f"site-{k}.db")
        for kind in coordinator:
            coordinator[kind] += sum(1 for _, w in writes if w == kind)
        begun |= {t for t, w in writes if w == "Began"}
        per_site.append({kind: {t for t, w in writes if w == kind} for kind in ("Prepared", "Committed")})
    complete = all(s["Prepared"] == begun and s["Committed"] == begun for s in per_site)
    counts = (f"{created} answered 201; Began {coordinator['Began']}, Decided {coordinator['Decided']}, "
              f"Ended {coordinator['Ended']}; Prepared " + "/".join(str(len(s["Prepared"])) for s in per_site)
              + ", Committed " + "/".join(str(len(s["Committed"])) for s in per_site))
    if complete and len(set(coordinator.values()) | {created, len(begun)}) == 1:
        return f"check ok: {counts}"
    return f"!!!!!! WARNING: THE LOGS DO NOT HOLD EVERY WRITE: {counts} !!!!!!"


def print_profile(path: Path) -> None:
    import pstats

    if not path.exists():
        print("(no profile written)")
        return
    print("\n== cProfile of site 0's event-loop thread (CPU clock), top by own time:")
    pstats.Stats(str(path)).sort_stats("tottime").print_stats(30)


def label(args, writes: str) -> str:
    if args.actors != "none" and writes == "inline":
        writes = "in the actor"
    return f"{writes}/{args.store}/{args.actors}"


def bench(args) -> int:
    print(f"machine: {weather.machine()}", flush=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench-floor-"))
    modes = ("thread", "inline") if args.writes == "both" else (args.writes,)
    rows, procs = [], []
    try:
        for writes in modes:
            base = h.free_base_port(SITES)
            procs = start_sites(scratch, base, args, writes)
            servers = [h.psutil.Process(p.pid) for p in procs]
            urls = [f"http://127.0.0.1:{base + k}" for k in range(SITES)]
            created = 0
            for clients in (1, args.clients):
                r = asyncio.run(measure(urls, servers, clients, args.duration))
                created += r["done"]
                rows.append([label(args, writes), clients, r["n"], f"{r['per_s']:.0f}", f"{r['p50']:.2f}", f"{r['p99']:.2f}",
                             sum(r["errors"].values()), f"{r['server_ms']:.2f}", f"{r['kernel_ms']:.2f}",
                             f"{r['threads_ms']:.2f}", f"{r['client_ms']:.2f}",
                             f"{r['fsyncs']:.2f}", r["load"]])
                print("  ".join(map(str, rows[-1])), flush=True)
                for kind, n in r["errors"].items():
                    print(f"  error x{n}: {kind}")
            stop_sites(procs)
            print(f"{label(args, writes)}: {check(scratch, created)}", flush=True)
            if args.profile:
                print_profile(scratch / "site-0.prof")
            for f in scratch.iterdir():
                f.unlink()
    finally:
        stop_sites(procs)
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"\nthe floor: bare 2PC across {SITES} sites, 11 forced writes per create, answered at the "
          f"{args.answer_after}; {args.duration:g} s per row after {WARMUP_S} s warm-up")
    print(h.table(["writes/store/actors", "clients", "creates", "txn/s", "p50 ms", "p99 ms", "errors", "server CPU ms/create",
                   "(kernel)", "(writer threads)", "client CPU ms/create", "commits/create", "1-min load after"],
                  rows, "<>>>>>>>>>>>>"))
    print(f"\nat the end: {weather.conditions()}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per row")
    parser.add_argument("--clients", type=int, default=16, help="clients of the second row")
    parser.add_argument("--writes", choices=("thread", "inline", "both"), default="both",
                        help="group commit by one writer thread, or a commit per write on the loop")
    parser.add_argument("--store", choices=("sqlite", "eventsourcing", "recorder"), default="sqlite",
                        help="stdlib sqlite3, the eventsourcing library's Application.save, or its recorder")
    parser.add_argument("--actors", choices=("none", "site", "txn"), default="none",
                        help="every write a Pykka actor's turn: one per site and role, or per transaction and role")
    parser.add_argument("--answer-after", choices=("decision", "acks"), default="decision")
    parser.add_argument("--profile", action="store_true", help="cProfile site 0 and print it")
    return bench(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
