"""The link proxy on real sockets: a recording echo server behind link 0->1."""

from __future__ import annotations

import socket
import socketserver
import threading
import time

import pytest

from tests.chaos.proxy import Proxies


class Echo(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        self.received = bytearray()
        super().__init__(("127.0.0.1", 0), EchoHandler)


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        try:
            while data := self.request.recv(4096):
                self.server.received += data
                self.request.sendall(data)
        except ConnectionError:
            pass  # the proxy reset this connection


@pytest.fixture
def link():
    """(proxies, echo server, connect()) with sites 0 and 1 both "at" the echo server."""
    echo = Echo()
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    port = echo.server_address[1]
    proxies = Proxies({0: port, 1: port})
    proxies.start()
    proxy_port = int(proxies.peer_urls(0)["1"].rsplit(":", 1)[1])

    def connect() -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", proxy_port), timeout=2)
        sock.settimeout(0.6)
        return sock

    yield proxies, echo, connect
    proxies.stop()
    echo.shutdown()
    echo.server_close()


def round_trip(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    return sock.recv(4096)


def test_a_healthy_link_forwards_both_ways(link):
    proxies, echo, connect = link
    with connect() as sock:
        assert round_trip(sock, b"ping") == b"ping"
    assert proxies.faulty() == {}


def test_a_blackholed_link_accepts_but_never_forwards_and_is_reset_when_healed(link):
    proxies, echo, connect = link
    with connect() as old:
        assert round_trip(old, b"before") == b"before"
        proxies.set(0, 1, "blackhole")
        with connect() as new:
            for sock in (old, new):
                with pytest.raises(TimeoutError):
                    round_trip(sock, b"lost")
            proxies.heal(0, 1)
            for sock in (old, new):  # their streams lost bytes: reset, never resumed
                with pytest.raises((ConnectionResetError, TimeoutError)):
                    assert round_trip(sock, b"after") == b""
    assert b"lost" not in echo.received
    with connect() as sock:
        assert round_trip(sock, b"healed") == b"healed"


def test_dropped_replies_let_the_request_through_but_not_the_answer(link):
    proxies, echo, connect = link
    proxies.set(0, 1, "drop_replies")
    with connect() as sock:
        with pytest.raises(TimeoutError):
            round_trip(sock, b"did it happen?")
    assert b"did it happen?" in echo.received


def test_a_delayed_link_delivers_late_and_in_order(link):
    proxies, echo, connect = link
    proxies.set(0, 1, "delay", 0.25)
    with connect() as sock:
        sock.settimeout(3)
        started = time.monotonic()
        sock.sendall(b"one,")
        sock.sendall(b"two")
        data = b""
        while len(data) < 7:
            data += sock.recv(4096)
        assert data == b"one,two"
        assert time.monotonic() - started >= 0.5  # both directions are late


def test_a_reset_link_resets_open_and_new_connections(link):
    proxies, echo, connect = link
    with connect() as old:
        assert round_trip(old, b"x") == b"x"
        proxies.set(0, 1, "reset")
        with pytest.raises(ConnectionResetError):
            round_trip(old, b"y") or round_trip(old, b"y")
    with pytest.raises(ConnectionResetError):
        with connect() as new:
            round_trip(new, b"z") or round_trip(new, b"z")
    proxies.heal(0, 1)
    with connect() as sock:
        assert round_trip(sock, b"back") == b"back"


def test_faults_are_per_direction(link):
    proxies, echo, connect = link
    proxies.set(1, 0, "blackhole")
    with connect() as sock:  # link 0->1 is untouched
        assert round_trip(sock, b"fine") == b"fine"
    assert proxies.faulty() == {(1, 0): "blackhole"}


def test_a_throttled_link_forwards_at_its_rate_and_full_speed_once_healed(link):
    proxies, echo, connect = link
    payload = bytes(60_000)

    def echo_time() -> float:
        with connect() as sock:
            sock.settimeout(5)
            started = time.monotonic()
            sock.sendall(payload)
            got = 0
            while got < len(payload):
                got += len(sock.recv(65536))
            return time.monotonic() - started

    proxies.set(0, 1, "throttle", rate=100_000)
    slow = echo_time()
    assert 0.5 <= slow < 3  # 60 kB at 100 kB/s, each way (the echo overlaps the two)
    assert proxies.faulty() == {(0, 1): "throttle"}
    proxies.heal(0, 1)
    assert echo_time() < 0.3
