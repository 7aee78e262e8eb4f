"""One site of the floor benchmark (benchmarks/bench_floor.py starts 4 of them):

    python benchmarks/floor_site.py --serve K --base-port P --dir D [--writes thread|inline]
                                    [--answer-after decision|acks] [--profile]

uvloop; an aiohttp app with `POST /create` {"title": ...} (this site coordinates), a WebSocket
endpoint for the peers' channels (this site participates, replies on the same socket),
`GET /ready` once every peer's channel is open, `GET /stats` (commits so far). One SQLite file
(WAL, synchronous=FULL) written by one writer thread (group commit) or inline on the loop.
Listens on 127.0.0.1 only; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import queue
import signal
import sqlite3
import sys
import threading
import time
import uuid
from pathlib import Path

import aiohttp
import msgspec
from aiohttp import web

SITES = 4
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



def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", type=int, required=True, help="this site's number")
    parser.add_argument("--base-port", type=int, required=True)
    parser.add_argument("--dir", required=True, help="where its SQLite file (and profile) go")
    parser.add_argument("--writes", choices=("thread", "inline"), default="thread")
    parser.add_argument("--answer-after", choices=("decision", "acks"), default="decision")
    parser.add_argument("--profile", action="store_true", help="cProfile the event-loop thread")
    args = parser.parse_args()
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
