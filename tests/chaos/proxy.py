"""A TCP proxy per directed site-to-site link, run on its own asyncio loop in a thread.

Link (i, j) carries the connections site i opens to site j: i's requests and j's replies.
A fault on it leaves (j, i) alone, so every fault hits one direction of a pair of sites:

    blackhole     accept, never forward: both streams are swallowed (the sender hears nothing)
    drop_replies  requests reach j, replies are swallowed: j acted, i cannot know it did
    delay         every chunk, both ways, arrives `delay_s` late (order is kept)
    reset         open connections are reset (RST); new ones are reset as soon as accepted
    throttle      each direction forwards at most `rate` bytes/s (shared by the link's
                  connections); the copy loop reads no faster, so senders feel TCP backpressure

A connection that lost data to a blackhole cannot carry HTTP any more: it is reset when the
link heals. Only 127.0.0.1 is listened on or connected to, unless the sites live on hosts of the
test's own (tests/deploy): then their addresses, and this machine's address on their bridge.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field

HOST = "127.0.0.1"
CHUNK = 64 * 1024
MODES = ("ok", "blackhole", "drop_replies", "delay", "reset", "throttle")
PACE_S = 0.05  # a throttled link forwards about this much time's worth of bytes at once
REQUEST, REPLY = "request", "reply"


def _reset(writer: asyncio.StreamWriter | None) -> None:
    """Close with RST rather than FIN: the peer sees 'connection reset'."""
    if writer is None or writer.transport.is_closing():
        return
    sock = writer.transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


@dataclass(eq=False)
class Pipe:
    """One proxied connection: the sender's side and, once connected, the receiver's."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    tainted: bool = False  # some bytes were swallowed: the HTTP stream is broken for good

    def reset(self) -> None:
        _reset(self.client)
        _reset(self.upstream)


@dataclass(eq=False)
class Link:
    src: int
    dst: int
    target_port: int
    target_host: str = HOST
    mode: str = "ok"
    delay_s: float = 0.0
    rate: float = 0.0  # throttle: bytes per second, each direction
    free_at: dict = field(default_factory=dict)  # throttle: direction -> when it may send again
    pipes: set[Pipe] = field(default_factory=set)
    stats: Counter = field(default_factory=Counter)
    server: asyncio.AbstractServer | None = None

    @property
    def port(self) -> int:
        return self.server.sockets[0].getsockname()[1]

    def swallows(self, direction: str) -> bool:
        return self.mode == "blackhole" or (self.mode == "drop_replies" and direction == REPLY)

    def set_mode(self, mode: str, delay_s: float = 0.0, rate: float = 0.0) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown link mode {mode!r}")
        if mode == "throttle" and rate <= 0:
            raise ValueError("a throttled link needs a rate in bytes/s")
        self.mode, self.delay_s, self.rate = mode, delay_s, rate
        self.free_at.clear()
        if mode == "reset":
            self.stats["reset"] += len(self.pipes)
            for pipe in list(self.pipes):
                pipe.reset()
        if mode == "ok":
            for pipe in [p for p in self.pipes if p.tainted]:
                pipe.reset()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pipe = Pipe(writer)
        self.pipes.add(pipe)
        self.stats["connections"] += 1
        try:
            if self.mode == "reset":
                self.stats["reset"] += 1
                pipe.reset()
                return
            if self.mode == "blackhole":  # accepted, but the receiver never hears of it
                pipe.tainted = True
                await self._swallow(reader)
                return
            try:
                up_reader, pipe.upstream = await asyncio.open_connection(self.target_host, self.target_port)
            except OSError:  # the receiving site is down: the sender sees a reset
                self.stats["refused"] += 1
                pipe.reset()
                return
            results = await asyncio.gather(self._pump(reader, pipe.upstream, pipe, REQUEST),
                                           self._pump(up_reader, writer, pipe, REPLY),
                                           return_exceptions=True)
            if any(isinstance(r, BaseException) for r in results):
                pipe.reset()
        except (OSError, asyncio.CancelledError):
            pipe.reset()
        finally:
            self.pipes.discard(pipe)
            if not writer.transport.is_closing():
                writer.close()
            if pipe.upstream is not None and not pipe.upstream.transport.is_closing():
                pipe.upstream.close()

    async def _swallow(self, reader: asyncio.StreamReader) -> None:
        while data := await reader.read(CHUNK):
            self.stats["swallowed_bytes"] += len(data)

    async def _pump(self, reader, writer, pipe: Pipe, direction: str) -> None:
        """Copy one direction; a delayed chunk waits in a queue so later ones keep their order."""
        queue: asyncio.Queue = asyncio.Queue()
        sender = asyncio.ensure_future(self._send(queue, writer))
        try:
            while True:
                throttled = self.mode == "throttle"
                data = await reader.read(max(1024, int(self.rate * PACE_S)) if throttled else CHUNK)
                if data and throttled:
                    await self._pace(direction, len(data))
                if data and (self.swallows(direction) or pipe.tainted and self.mode != "ok"):
                    pipe.tainted = True
                    self.stats["swallowed_bytes"] += len(data)
                    continue
                due = asyncio.get_running_loop().time() + (self.delay_s if self.mode == "delay" else 0)
                queue.put_nowait((due, data))
                if not data:
                    break
            await sender
        finally:
            sender.cancel()

    async def _pace(self, direction: str, size: int) -> None:
        """Wait for this chunk's turn on a throttled link: `rate` bytes/s per direction."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        start = max(now, self.free_at.get(direction, now))
        self.free_at[direction] = start + size / self.rate
        self.stats["throttled_bytes"] += size
        if start > now:
            await asyncio.sleep(start - now)

    async def _send(self, queue: asyncio.Queue, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, data = await queue.get()
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            if not data:
                if writer.can_write_eof() and not writer.transport.is_closing():
                    writer.write_eof()
                return
            self.stats["forwarded_bytes"] += len(data)
            writer.write(data)
            await writer.drain()


class Proxies:
    """Every directed link between `sites` (ports given per site), served from one thread.

    By default sites and proxies are all on 127.0.0.1; sites on hosts of a test's own give each
    site's host (`site_hosts`) and an address of this machine those hosts reach (`listen`)."""

    def __init__(self, site_ports: dict[int, int], site_hosts: dict[int, str] | None = None,
                 listen: str = HOST):
        self.site_ports = dict(site_ports)
        self.site_hosts = dict(site_hosts or {})
        self.listen = listen
        self.links: dict[tuple[int, int], Link] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="chaos-proxies",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._call(self._open_all())

    def _call(self, coroutine, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    async def _open_all(self) -> None:
        for src in self.site_ports:
            for dst, port in self.site_ports.items():
                if src != dst:
                    link = Link(src, dst, port, self.site_hosts.get(dst, HOST))
                    link.server = await asyncio.start_server(link.handle, self.listen, 0)
                    self.links[(src, dst)] = link

    def peer_urls(self, src: int) -> dict[str, str]:
        """SITE_PEER_URLS for site `src`: every peer reached through its link's proxy."""
        return {str(dst): f"http://{self.listen}:{link.port}"
                for (s, dst), link in self.links.items() if s == src}

    def set(self, src: int, dst: int, mode: str, delay_s: float = 0.0, rate: float = 0.0) -> None:
        async def apply():
            self.links[(src, dst)].set_mode(mode, delay_s, rate)
        self._call(apply())

    def heal(self, src: int, dst: int) -> None:
        self.set(src, dst, "ok")

    def heal_all(self) -> None:
        for src, dst in self.links:
            self.heal(src, dst)

    def faulty(self) -> dict[tuple[int, int], str]:
        return {key: link.mode for key, link in self.links.items() if link.mode != "ok"}

    def stats(self) -> Counter:
        total = Counter()
        for link in self.links.values():
            total.update(link.stats)
        return total

    def stop(self) -> None:
        async def close_all():
            for link in self.links.values():
                link.server.close()
                for pipe in list(link.pipes):
                    pipe.reset()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for link in self.links.values():
                await link.server.wait_closed()

        if not self._thread.is_alive():
            return
        try:
            self._call(close_all())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            if not self._thread.is_alive():
                self._loop.close()
