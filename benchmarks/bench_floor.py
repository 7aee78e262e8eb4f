"""The floor of the stack: create-event's 2PC across 4 sites, written as bare as possible.

    python benchmarks/bench_floor.py [--duration 10] [--clients 16] [--writes thread|inline|both]
                                     [--answer-after decision|acks] [--profile]

The service's libraries without its design: 4 site processes of this file (uvloop; an aiohttp
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
Everything listens on 127.0.0.1 only, and is stopped and removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import queue
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import aiohttp
import msgspec
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

SITES = 4
WARMUP_S = 0.5
RECORD = {"Prepare": "Prepared", "Commit": "Committed"}  # what a participant writes
REPLY = {"Prepare": "Yes", "Commit": "Ack"}              # and answers once it is stored


class Msg(msgspec.Struct, array_like=True):
    id: int
    kind: str
    txn: str
    body: str = ""


class Create(msgspec.Struct):
    title: str


ENCODE = msgspec.json.Encoder().encode
DECODE_FRAME = msgspec.json.Decoder(list[Msg]).decode
DECODE_CREATE = msgspec.json.Decoder(Create).decode


# --- a site: the log ------------------------------------------------------------------------------
class Log:
    """One SQLite file, every write forced (committed with synchronous=FULL) before its future resolves."""

    def __init__(self, path: Path, threaded: bool):
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE IF NOT EXISTS log (txn TEXT, kind TEXT, body BLOB, PRIMARY KEY (txn, kind))")
        self.loop = asyncio.get_running_loop()
        self.commits = 0
        self.queue: queue.SimpleQueue | None = queue.SimpleQueue() if threaded else None
        if threaded:
            self.thread = threading.Thread(target=self._writer, name="log-writer", daemon=True)
            self.thread.start()

    def write(self, txn: str, kind: str, body: str = "") -> asyncio.Future:
        done = self.loop.create_future()
        if self.queue is not None:
            self.queue.put((txn, kind, body.encode(), done))
        else:
            self._commit([(txn, kind, body.encode())])
            done.set_result(None)
        return done

    def _commit(self, rows: list) -> None:
        self.db.execute("BEGIN")
        self.db.executemany("INSERT INTO log (txn, kind, body) VALUES (?, ?, ?)", rows)
        self.db.execute("COMMIT")
        self.commits += 1

    def _writer(self) -> None:  # group commit: everything queued goes in one transaction
        while (first := self.queue.get()) is not None:
            batch = [first]
            while True:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            stop = batch[-1] is None  # close() puts None last
            batch = batch[:-1] if stop else batch
            self._commit([w[:3] for w in batch])
            self.loop.call_soon_threadsafe(_resolve, [w[3] for w in batch])
            if stop:
                return

    def close(self) -> None:
        if self.queue is not None:
            self.queue.put(None)
            self.thread.join()
        self.db.close()


def _resolve(futures: list) -> None:
    for f in futures:
        if not f.done():
            f.set_result(None)


# --- a site: channels -----------------------------------------------------------------------------
class Link:
    """One WebSocket and its writer task: what was queued while a frame was sent goes in the next."""

    def __init__(self, ws):
        self.ws, self.outbox, self.wake = ws, [], asyncio.Event()
        self.writer = asyncio.create_task(self._write())

    def put(self, msg: Msg) -> None:
        self.outbox.append(msg)
        self.wake.set()

    async def _write(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            batch, self.outbox = self.outbox, []
            if batch:
                await self.ws.send_bytes(ENCODE(batch))


class Peer:
    """The channel this site dials to one other site: requests out, replies back on it."""

    def __init__(self, url: str):
        self.url, self.link, self.pending, self.ids = url, None, {}, itertools.count()

    async def connect(self, session: aiohttp.ClientSession) -> None:
        while True:  # the other sites may not listen yet
            try:
                ws = await session.ws_connect(self.url)
                break
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
        self.link = Link(ws)
        async for frame in ws:
            for reply in DECODE_FRAME(frame.data):
                self.pending.pop(reply.id).set_result(reply.kind)

    def request(self, kind: str, txn: str, body: str = "") -> asyncio.Future:
        n = next(self.ids)
        self.pending[n] = answer = asyncio.get_running_loop().create_future()
        self.link.put(Msg(n, kind, txn, body))
        return answer


# --- a site: the protocol -------------------------------------------------------------------------
class Site:
    def __init__(self, k: int, base_port: int, log: Log, answer_after: str):
        self.log, self.answer_after = log, answer_after
        self.peers = [Peer(f"http://127.0.0.1:{base_port + j}/ws") for j in range(SITES) if j != k]

    async def here(self, kind: str, txn: str, body: str = "") -> str:
        """This site as a participant, called directly (no socket)."""
        await self.log.write(txn, RECORD[kind], body)
        return REPLY[kind]

    async def create(self, request: web.Request) -> web.Response:
        """The coordinator."""
        title = DECODE_CREATE(await request.read()).title
        txn = uuid.uuid4().hex
        await self.log.write(txn, "Began", title)
        votes = await asyncio.gather(self.here("Prepare", txn, title),
                                     *(p.request("Prepare", txn, title) for p in self.peers))
        if any(v != "Yes" for v in votes):
            await self.log.write(txn, "Decided", "abort")
            return web.Response(status=409)
        await self.log.write(txn, "Decided", "commit")
        acks = asyncio.gather(self.here("Commit", txn), *(p.request("Commit", txn) for p in self.peers))
        acks.add_done_callback(lambda _: self.log.write(txn, "Ended"))
        if self.answer_after == "acks":
            await acks
        return web.Response(status=201, body=ENCODE({"event_id": txn}), content_type="application/json")

    async def channel(self, request: web.Request) -> web.WebSocketResponse:
        """A peer's channel to this site: this site participates, replies on the same socket."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        link = Link(ws)
        async for frame in ws:
            for msg in DECODE_FRAME(frame.data):
                stored = self.log.write(msg.txn, RECORD[msg.kind], msg.body)
                stored.add_done_callback(lambda _, m=msg: link.put(Msg(m.id, REPLY[m.kind], m.txn)))
        link.writer.cancel()
        return ws

    async def ready(self, _request) -> web.Response:
        return web.Response(status=200 if all(p.link for p in self.peers) else 503)

    async def stats(self, _request) -> web.Response:
        return web.Response(body=ENCODE({"commits": self.log.commits}))


async def serve(args) -> None:
    loop, stop = asyncio.get_running_loop(), asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log = Log(Path(args.dir) / f"site-{args.serve}.db", args.writes == "thread")
    site = Site(args.serve, args.base_port, log, args.answer_after)
    app = web.Application()
    app.add_routes([web.post("/create", site.create), web.get("/ws", site.channel),
                    web.get("/ready", site.ready), web.get("/stats", site.stats)])
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.base_port + args.serve).start()
    async with aiohttp.ClientSession() as session:
        dialled = [asyncio.create_task(p.connect(session)) for p in site.peers]
        profile = None
        if args.profile:
            import cProfile

            profile = cProfile.Profile(time.thread_time)  # CPU of the event-loop thread only
            profile.enable()
        await stop.wait()
        if profile:
            profile.disable()
            profile.dump_stats(Path(args.dir) / f"site-{args.serve}.prof")
        for task in dialled:
            task.cancel()
        await asyncio.gather(*(p.link.ws.close() for p in site.peers if p.link), return_exceptions=True)
    await runner.cleanup()
    log.close()


# --- the benchmark --------------------------------------------------------------------------------
def start_sites(scratch: Path, base: int, args, writes: str) -> list[subprocess.Popen]:
    procs = []
    for k in range(SITES):
        cmd = [sys.executable, __file__, "--serve", str(k), "--base-port", str(base), "--dir", str(scratch),
               "--writes", writes, "--answer-after", args.answer_after] + (["--profile"] if args.profile and k == 0 else [])
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
            "fsyncs": fsyncs / n, "load": h.load().split()[0]}


def check(scratch: Path, created: int) -> str:
    """Every begun txn Prepared and Committed at every site; Began/Decided/Ended once each."""
    coordinator = {"Began": 0, "Decided": 0, "Ended": 0}
    begun, per_site = set(), []
    for k in range(SITES):
        db = sqlite3.connect(scratch / f"site-{k}.db")
        for kind in coordinator:
            coordinator[kind] += db.execute("SELECT count(*) FROM log WHERE kind = ?", (kind,)).fetchone()[0]
        begun |= {t for (t,) in db.execute("SELECT txn FROM log WHERE kind = 'Began'")}
        per_site.append({kind: {t for (t,) in db.execute("SELECT txn FROM log WHERE kind = ?", (kind,))}
                         for kind in ("Prepared", "Committed")})
        db.close()
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


def bench(args) -> int:
    print(f"machine: {h.machine()}", flush=True)
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
                rows.append([writes, clients, r["n"], f"{r['per_s']:.0f}", f"{r['p50']:.2f}", f"{r['p99']:.2f}",
                             sum(r["errors"].values()), f"{r['server_ms']:.2f}", f"{r['kernel_ms']:.2f}",
                             f"{r['threads_ms']:.2f}", f"{r['client_ms']:.2f}",
                             f"{r['fsyncs']:.2f}", r["load"]])
                print("  ".join(map(str, rows[-1])), flush=True)
                for kind, n in r["errors"].items():
                    print(f"  error x{n}: {kind}")
            stop_sites(procs)
            print(f"{writes}: {check(scratch, created)}", flush=True)
            if args.profile:
                print_profile(scratch / "site-0.prof")
            for f in scratch.iterdir():
                f.unlink()
    finally:
        stop_sites(procs)
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"\nthe floor: bare 2PC across {SITES} sites, 11 forced writes per create, answered at the "
          f"{args.answer_after}; {args.duration:g} s per row after {WARMUP_S} s warm-up")
    print(h.table(["writes", "clients", "creates", "txn/s", "p50 ms", "p99 ms", "errors", "server CPU ms/create",
                   "(kernel)", "(writer threads)", "client CPU ms/create", "commits/create", "1-min load after"],
                  rows, "<>>>>>>>>>>>>"))
    print(f"\nat the end: {h.conditions()}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per row")
    parser.add_argument("--clients", type=int, default=16, help="clients of the second row")
    parser.add_argument("--writes", choices=("thread", "inline", "both"), default="both",
                        help="group commit by one writer thread, or a commit per write on the loop")
    parser.add_argument("--answer-after", choices=("decision", "acks"), default="decision")
    parser.add_argument("--profile", action="store_true", help="cProfile site 0 and print it")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # a site process (started here)
    parser.add_argument("--base-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is None:
        return bench(args)
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
