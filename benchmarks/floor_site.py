"""One site of the floor benchmark (benchmarks/bench_floor.py starts 4 of them):

    python benchmarks/floor_site.py --serve K --base-port P --dir D [--writes thread|inline]
                                    [--store sqlite|eventsourcing|recorder] [--actors none|site|txn]
                                    [--answer-after decision|acks] [--profile]

uvloop; an aiohttp app with `POST /create` {"title": ...} (this site coordinates), a WebSocket
endpoint for the peers' channels (this site participates, replies on the same socket),
`GET /ready` once every peer's channel is open, `GET /stats` (commits so far). One SQLite file
(WAL, synchronous=FULL) written by one writer thread (group commit) or inline on the loop
(the logs: benchmarks/floor_logs.py). `--store eventsourcing`: the same writes through the eventsourcing library's public API (an
aggregate per transaction, one event per write, `Application.save` of the batch, its SQLite module);
`--store recorder`: through its recorder (`insert_events` of stored events built directly).
`--actors site|txn`: every write is a turn of a Pykka actor (the site's coordinator or participant
actor; `txn`: one per transaction and role, started at its first write and stopped after its last),
which queues it for the writer thread (`--writes thread`: group commit) or stores it itself (`inline`).
Listens on 127.0.0.1 only; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import msgspec
import pykka
from aiohttp import web

from floor_logs import EventSourcedLog, Log, RecorderLog

SITES = 4
RECORD = {"Prepare": "Prepared", "Commit": "Committed"}  # what a participant writes
REPLY = {"Prepare": "Yes", "Commit": "Ack"}              # and answers once it is stored
ROLE = {"Began": "coordinator", "Decided": "coordinator", "Ended": "coordinator",
        "Prepared": "participant", "Committed": "participant"}
LAST = {"coordinator": "Ended", "participant": "Committed"}  # a role's last write of a transaction


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


# --- a site: its actors' turns ---------------------------------------------------------------
class Turns(pykka.ThreadingActor):
    """An actor that runs what it is told (a write: stored in its own thread, or queued for the
    log's writer thread) and answers on the loop."""

    def on_receive(self, message) -> None:
        work, loop, answer, last = message
        try:
            if work():  # stored now; otherwise the log's writer thread settles the answer
                loop.call_soon_threadsafe(_settle, answer, None)
        except Exception as e:  # noqa: BLE001 (told to the waiting coroutine)
            loop.call_soon_threadsafe(_settle, answer, e)
        if last:
            self.stop(block=False)


def _settle(future: asyncio.Future, error: Exception | None) -> None:
    if not future.done():
        future.set_exception(error) if error else future.set_result(None)


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
    def __init__(self, k: int, base_port: int, log: Log, answer_after: str, actors: str):
        self.log, self.answer_after, self.actors = log, answer_after, actors
        self.peers = [Peer(f"http://127.0.0.1:{base_port + j}/ws") for j in range(SITES) if j != k]
        self.site_actors = {role: Turns.start() for role in LAST} if actors == "site" else {}
        self.txn_actors: dict[tuple[str, str], pykka.ActorRef] = {}

    def write(self, txn: str, kind: str, body: str = "") -> asyncio.Future:
        """A forced write: by the log's own way (`--actors none`), or as an actor's turn."""
        if self.actors == "none":
            return self.log.write(txn, kind, body)
        role = ROLE[kind]
        last = self.actors == "txn" and kind == LAST[role]
        if self.actors == "site":
            actor = self.site_actors[role]
        else:  # one per transaction and role: kept until its last write
            actor = self.txn_actors.pop((role, txn), None) if last else self.txn_actors.get((role, txn))
            if actor is None:
                actor = Turns.start()
                if not last:
                    self.txn_actors[role, txn] = actor
        loop = asyncio.get_running_loop()
        answer = loop.create_future()
        if self.log.grouped:  # the turn queues it, the writer thread settles the answer
            def work() -> bool:
                self.log.write_later(txn, kind, body, answer)
                return False
        else:
            def work() -> bool:
                self.log.write_now(txn, kind, body)
                return True
        actor.tell((work, loop, answer, last))
        return answer

    async def here(self, kind: str, txn: str, body: str = "") -> str:
        """This site as a participant, called directly (no socket)."""
        await self.write(txn, RECORD[kind], body)
        return REPLY[kind]

    async def create(self, request: web.Request) -> web.Response:
        """The coordinator."""
        title = DECODE_CREATE(await request.read()).title
        txn = uuid.uuid4().hex
        await self.write(txn, "Began", title)
        votes = await asyncio.gather(self.here("Prepare", txn, title),
                                     *(p.request("Prepare", txn, title) for p in self.peers))
        if any(v != "Yes" for v in votes):
            await self.write(txn, "Decided", "abort")
            return web.Response(status=409)
        await self.write(txn, "Decided", "commit")
        acks = asyncio.gather(self.here("Commit", txn), *(p.request("Commit", txn) for p in self.peers))
        acks.add_done_callback(lambda _: self.write(txn, "Ended"))
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
                stored = self.write(msg.txn, RECORD[msg.kind], msg.body)
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
    kind = {"sqlite": Log, "eventsourcing": EventSourcedLog, "recorder": RecorderLog}[args.store]
    log = kind(Path(args.dir) / f"site-{args.serve}.db", args.writes == "thread")
    site = Site(args.serve, args.base_port, log, args.answer_after, args.actors)
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
    pykka.ActorRegistry.stop_all()
    log.close()



def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", type=int, required=True, help="this site's number")
    parser.add_argument("--base-port", type=int, required=True)
    parser.add_argument("--dir", required=True, help="where its SQLite file (and profile) go")
    parser.add_argument("--writes", choices=("thread", "inline"), default="thread")
    parser.add_argument("--store", choices=("sqlite", "eventsourcing", "recorder"), default="sqlite")
    parser.add_argument("--actors", choices=("none", "site", "txn"), default="none")
    parser.add_argument("--answer-after", choices=("decision", "acks"), default="decision")
    parser.add_argument("--profile", action="store_true", help="cProfile the event-loop thread")
    args = parser.parse_args()
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
