"""Latency of a voting round's end across real sites: from the vote that decides it to every site.

    python benchmarks/bench_rounds.py [--sites 4] [--rounds 50] [--base-port P] [--poll-ms 5]

Starts its own sites with launcher.py (a scratch data directory, and a copy of settings.toml with
voting_period_s = 60 so no round ends by its deadline), then runs, each on a fresh event whose
three users upload one small photo each at three different sites:

- publish: the three accept; time from the 200 of the last accept until every site's
  `GET /api/events/{id}` says `state == "published"`;
- reject: one accepts (the round starts), another rejects; time from the reject's 200 until
  every site says `last_outcome.outcome == "aborted"`.

Every site is polled every --poll-ms over a kept-alive connection; a site's time is when it was
first seen done, the round's is the slowest site's. Prints p50/p99 per measure, stops the sites.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
VOTING_PERIOD_S = 60
COOKIE_NAME = "photo_session_user"


class User:
    """One person: one identity cookie for every site, one kept-alive connection per site."""

    def __init__(self, ports: list[int]):
        self.ports = ports
        self.cookie: str | None = None
        self.connections: dict[int, http.client.HTTPConnection] = {}

    def request(self, site: int, method: str, path: str, body: bytes | None = None,
                content_type: str | None = None) -> tuple[int, dict]:
        headers = {"Origin": f"http://127.0.0.1:{self.ports[site]}"} if method == "POST" else {}
        if content_type:
            headers["Content-Type"] = content_type
        if self.cookie:
            headers["Cookie"] = f"{COOKIE_NAME}={self.cookie}"
        for attempt in (1, 2):  # a kept-alive connection the server closed: reconnect once
            connection = self.connections.get(site)
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", self.ports[site], timeout=30)
                self.connections[site] = connection
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, ConnectionError):
                connection.close()
                del self.connections[site]
                if attempt == 2:
                    raise
        match = re.search(rf"{COOKIE_NAME}=([^;]+)", response.getheader("Set-Cookie") or "")
        if match:
            self.cookie = match.group(1)
        return response.status, json.loads(data)

    def post_json(self, site: int, path: str, body: dict) -> tuple[int, dict]:
        return self.request(site, "POST", path, json.dumps(body).encode(), "application/json")

    def upload(self, site: int, event_id: str, jpeg: bytes) -> tuple[int, dict]:
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"p.jpg\"\r\n"
                f"Content-Type: image/jpeg\r\n\r\n").encode() + jpeg + f"\r\n--{boundary}--\r\n".encode()
        return self.request(site, "POST", f"/api/events/{event_id}/photos", body,
                            f"multipart/form-data; boundary={boundary}")

    def close(self) -> None:
        for connection in self.connections.values():
            connection.close()


def expect(status: int, body: dict, wanted: int, what: str) -> dict:
    if status != wanted:
        raise SystemExit(f"{what}: expected {wanted}, got {status} {body}")
    return body


def small_jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    color = (seed * 37 % 256, seed * 91 % 256, seed * 53 % 256)
    Image.new("RGB", (160, 120), color).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def free_base_port(count: int) -> int:
    for base in range(9400, 20000, 10):
        ok = True
        for k in range(count):
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(("127.0.0.1", base + k))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise SystemExit("no free port range found")


def wait_ready(poller: User, sites: int, deadline: float) -> None:
    for k in range(sites):
        while True:
            try:
                if poller.request(k, "GET", "/api/status")[0] == 200:
                    break
            except OSError:
                poller.connections.pop(k, None)
            if time.monotonic() > deadline:
                raise SystemExit(f"site {k} did not become ready")
            time.sleep(0.1)


def time_until_everywhere(poller: User, sites: int, event_id: str, done, start: float,
                          poll_s: float, timeout: float = 30.0) -> float:
    """Seconds from `start` (perf_counter) until done(view) was seen at every site."""
    pending = set(range(sites))
    seen_at = {}
    while pending:
        for k in sorted(pending):
            status, view = poller.request(k, "GET", f"/api/events/{event_id}")
            if status == 200 and done(view):
                seen_at[k] = time.perf_counter()
                pending.discard(k)
        if pending:
            if time.perf_counter() - start > timeout:
                raise SystemExit(f"event {event_id}: sites {sorted(pending)} not done after {timeout} s")
            time.sleep(poll_s)
    return max(seen_at.values()) - start


def event_with_three_photos(users: list[User], sites: int, i: int, jpegs: list[bytes]) -> tuple[str, int]:
    home = i % sites
    status, body = users[0].post_json(home, "/api/events", {"title": f"bench round {i}"})
    event_id = expect(status, body, 201, "create event")["event_id"]
    for n, user in enumerate(users):
        status, body = user.upload((home + n) % sites, event_id, jpegs[n])
        expect(status, body, 201, "upload")
    return event_id, home


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return statistics.median(samples) * 1000, q[98] * 1000, max(samples) * 1000


def run(args, ports: list[int]) -> dict[str, list[float]]:
    users = [User(ports) for _ in range(3)]
    poller = User(ports)
    wait_ready(poller, args.sites, time.monotonic() + 60)
    jpegs = [small_jpeg(n) for n in range(3)]
    path = "/api/events/{}/votes"
    publish, reject = [], []
    try:
        for i in range(args.rounds):
            event_id, home = event_with_three_photos(users, args.sites, i, jpegs)
            for n, user in enumerate(users):  # votes at three sites, the last one away from home
                status, body = user.post_json((home + 1 + n) % args.sites, path.format(event_id),
                                              {"montage_version": 3, "decision": "accept"})
                expect(status, body, 200, "accept")
                start = time.perf_counter()
            publish.append(time_until_everywhere(
                poller, args.sites, event_id, lambda v: v["state"] == "published", start,
                args.poll_ms / 1000))
        for i in range(args.rounds):
            event_id, home = event_with_three_photos(users, args.sites, args.rounds + i, jpegs)
            status, body = users[0].post_json((home + 1) % args.sites, path.format(event_id),
                                              {"montage_version": 3, "decision": "accept"})
            expect(status, body, 200, "accept")
            status, body = users[1].post_json((home + 2) % args.sites, path.format(event_id),
                                              {"montage_version": 3, "decision": "reject"})
            expect(status, body, 200, "reject")
            start = time.perf_counter()
            reject.append(time_until_everywhere(
                poller, args.sites, event_id,
                lambda v: (v["last_outcome"] or {}).get("outcome") == "aborted", start,
                args.poll_ms / 1000))
    finally:
        for user in (*users, poller):
            user.close()
    return {"last accept 200 -> published everywhere": publish,
            "reject 200 -> aborted everywhere": reject}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=50, help="rounds of each kind")
    parser.add_argument("--base-port", type=int, help="default: the first free range from 9400")
    parser.add_argument("--poll-ms", type=float, default=5.0)
    args = parser.parse_args()
    if args.sites < 3:
        parser.error("three users vote at three different sites: --sites must be at least 3")
    base_port = args.base_port or free_base_port(args.sites)
    scratch = Path(tempfile.mkdtemp(prefix="bench-rounds-"))
    settings = (ROOT / "settings.toml").read_text()
    settings, count = re.subn(r"(?m)^voting_period_s\s*=.*$", f"voting_period_s = {VOTING_PERIOD_S}",
                              settings)
    if count != 1:
        raise SystemExit("settings.toml has no voting_period_s line to override")
    settings_path = scratch / "settings.toml"
    settings_path.write_text(settings)
    launcher = subprocess.Popen(
        [sys.executable, "launcher.py", "--sites", str(args.sites), "--base-port", str(base_port),
         "--data-dir", str(scratch / "data"), "--settings", str(settings_path)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        ports = [base_port + k for k in range(args.sites)]
        results = run(args, ports)
    finally:
        launcher.send_signal(signal.SIGTERM)
        launcher.wait(timeout=30)
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{args.sites} sites, {args.rounds} rounds of each kind, each on a fresh event with 3 "
          f"submitters at 3 sites; polling every {args.poll_ms:g} ms; {os.cpu_count()} cores")
    print(f"{'measure':<42} {'n':>4} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, samples in results.items():
        p50, p99, worst = percentiles(samples)
        print(f"{name:<42} {len(samples):>4} {p50:>8.1f} {p99:>8.1f} {worst:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
