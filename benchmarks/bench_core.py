"""Latency of the replicated core across real sites: create-event and a 1200x900 JPEG upload.

    python benchmarks/bench_core.py [--sites 4] [--n 200] [--base-port 9300]

Starts its own sites with launcher.py on a scratch data directory, measures sequential requests
from one client (each a full two-phase commit across every site), prints p50/p99, stops them.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PHOTOS_PER_EVENT = 10


def request(url: str, body: bytes, content_type: str, cookie: str | None) -> tuple[float, dict, str]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    if cookie:
        req.add_header("Cookie", cookie)
    start = time.perf_counter()
    with urllib.request.urlopen(req) as r:
        data = json.loads(r.read())
        elapsed = time.perf_counter() - start
        set_cookie = r.headers.get("Set-Cookie", "")
    return elapsed, data, set_cookie.split(";")[0] or cookie


def multipart(jpeg: bytes) -> tuple[bytes, str]:
    boundary = "benchboundary7d3f"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"p.jpg\"\r\n"
        f"Content-Type: image/jpeg\r\n\r\n".encode() + jpeg + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def percentiles(samples: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return statistics.median(samples) * 1000, q[98] * 1000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sites", type=int, default=4)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--base-port", type=int, default=9300)
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="bench-core-")
    launcher = subprocess.Popen(
        [sys.executable, "launcher.py", "--sites", str(args.sites), "--base-port", str(args.base_port),
         "--data-dir", data_dir],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        urls = [f"http://127.0.0.1:{args.base_port + k}" for k in range(args.sites)]
        for url in urls:
            h.wait_until_ready(url, time.monotonic() + 60)
        creates, uploads, cookie = [], [], None
        for i in range(args.n):
            elapsed, _, cookie = request(urls[i % args.sites] + "/api/events",
                                         json.dumps({"title": f"bench {i}"}).encode(),
                                         "application/json", cookie)
            creates.append(elapsed)
        buf = io.BytesIO()
        Image.effect_noise((1200, 900), 64).convert("RGB").save(buf, "JPEG", quality=90)
        body, content_type = multipart(buf.getvalue())
        for i in range(args.n):
            if i % PHOTOS_PER_EVENT == 0:  # events of a realistic size: montages of 1..10 photos
                _, event, cookie = request(urls[0] + "/api/events", b'{"title": "uploads"}',
                                           "application/json", cookie)
            url = f"{urls[i % args.sites]}/api/events/{event['event_id']}/photos"
            elapsed, _, cookie = request(url, body, content_type, cookie)
            uploads.append(elapsed)
        print(f"{args.sites} sites, {args.n} sequential requests each, one client, {os.cpu_count()} cores")
        print(f"{'operation':<28} {'p50 ms':>8} {'p99 ms':>8}")
        for name, samples in (("create event (2PC)", creates), ("upload 1200x900 JPEG (2PC)", uploads)):
            p50, p99 = percentiles(samples)
            print(f"{name:<28} {p50:>8.1f} {p99:>8.1f}")
    finally:
        launcher.send_signal(signal.SIGTERM)
        launcher.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
