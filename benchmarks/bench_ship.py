"""Ship, then commit, with one peer behind a 10 Mbit/s line.

    python benchmarks/bench_ship.py [--photos 4] [--rate-mbit 10] [--slow-site 3] [--keep]

Four sites on 127.0.0.1, each started as `python -m web.site`, every site-to-site link through
the chaos harness's TCP proxies (tests/chaos/proxy.py), and every link to and from
--slow-site throttled to --rate-mbit (each direction, in the proxy's copy loop).

1. Guest A uploads --photos phone-sized photos (4000x3000 JPEGs of a gradient and coarse
   noise, ~8 MB each, ~2 MB each once normalised to 2000x1500 as a phone photo is) in one
   request at site 0: time to 201, then whether every site serves the new version.
2. Meanwhile guest B uploads a small photo to the same event at site 1, again and again
   (every 0.5 s, each after the previous answer) until A's upload is answered: each one's time
   to 201 (goal < 2 s: the event is not locked while A's bytes travel).
3. Lock time at the participants, from every site's audit log: Prepared to Committed (or
   Aborted) of each upload transaction at each site; p50 and max, for B's small uploads and
   for A's large one apart (goal p50 < 20 ms, independent of photo size); and, for a
   baseline, of --after small uploads by B once A's upload is answered (nothing else running).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import io
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h  # noqa: E402
import _weather as weather  # noqa: E402

from tests.chaos.proxy import Proxies  # noqa: E402

WIDTH, HEIGHT = 4000, 3000


def phone_photo(seed: int) -> bytes:
    """A 4000x3000 JPEG whose detail survives the halving a site's normalising does (noise in
    2x2 blocks), so the file shipped to the peers is ~2 MB, about a real phone photo's."""
    from PIL import Image

    rng = random.Random(seed)
    noise = Image.frombytes("RGB", (WIDTH // 2, HEIGHT // 2), rng.randbytes(WIDTH * HEIGHT * 3 // 4))
    ramp = Image.linear_gradient("L").rotate(rng.randint(0, 90)).resize((WIDTH, HEIGHT)).convert("RGB")
    out = io.BytesIO()
    Image.blend(ramp, noise.resize((WIDTH, HEIGHT), Image.Resampling.NEAREST), 0.5).save(out, "JPEG", quality=90)
    return out.getvalue()


def multipart(photos: list[bytes]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [(f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"p{i}.jpg\"\r\n"
              f"Content-Type: image/jpeg\r\n\r\n").encode() + jpeg + b"\r\n" for i, jpeg in enumerate(photos)]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


async def upload(session, url: str, event_id: str, photos: list[bytes], cookie: str) -> tuple[int, dict, float]:
    body, content_type = multipart(photos)
    started = time.perf_counter()
    async with session.post(f"{url}/api/events/{event_id}/photos", data=body,
                            headers={"Content-Type": content_type, "Cookie": cookie}) as r:
        answer = await r.json(content_type=None)
    return r.status, answer, time.perf_counter() - started


class ProxiedSites:
    """Four sites, each reaching its peers through the proxies (SITE_PEER_URLS)."""

    def __init__(self, count: int, keep: bool):
        self.count, self.keep = count, keep
        self.scratch = Path(tempfile.mkdtemp(prefix="bench-ship-"))
        self.data_dir = self.scratch / "data"
        self.settings_path = h.settings_copy(self.scratch)
        self.base_port = h.free_base_port(count)
        self.urls = [f"http://127.0.0.1:{self.base_port + k}" for k in range(count)]
        self.proxies = Proxies({k: self.base_port + k for k in range(count)})
        self.processes: list[subprocess.Popen] = []

    def start(self) -> "ProxiedSites":
        self.proxies.start()
        for k in range(self.count):
            (self.data_dir / f"site-{k}").mkdir(parents=True, exist_ok=True)
            env = {**os.environ, "SITE_PEER_URLS": json.dumps(self.proxies.peer_urls(k))}
            self.processes.append(subprocess.Popen(
                [sys.executable, "-m", "web.site", "--site", str(k), "--sites", str(self.count),
                 "--base-port", str(self.base_port), "--data-dir", str(self.data_dir),
                 "--settings", str(self.settings_path)],
                cwd=h.ROOT, env=env, stdin=subprocess.DEVNULL,
                stdout=open(self.data_dir / f"site-{k}" / "site.log", "ab"), stderr=subprocess.STDOUT))
        for url in self.urls:
            h.wait_until_ready(url, time.monotonic() + h.READY_TIMEOUT_S)
        return self

    def throttle(self, site: int, rate: float) -> None:
        for other in range(self.count):
            if other != site:
                self.proxies.set(other, site, "throttle", rate=rate)
                self.proxies.set(site, other, "throttle", rate=rate)

    def stop(self) -> None:
        for p in self.processes:
            p.terminate()
        for p in self.processes:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        self.proxies.stop()
        if not self.keep:
            import shutil

            shutil.rmtree(self.scratch, ignore_errors=True)


async def versions(session, sites: ProxiedSites, event_id: str, cookie: str) -> list[int]:
    found = []
    for url in sites.urls:
        status, body = await h.get(session, f"{url}/api/events/{event_id}", cookie)
        found.append(json.loads(body)["montage_version"] if status == 200 else -1)
    return found


async def lock_times(session, sites: ProxiedSites, event_id: str, split: float) -> dict:
    """(photos per upload, prepared after `split`) -> [Prepared to Committed/Aborted, seconds]
    of each upload transaction at each site that prepared it."""
    held: dict[tuple[int, bool], list[float]] = {}
    for url in sites.urls:
        status, body = await h.get(session, f"{url}/api/events/{event_id}/audit")
        if status != 200:
            continue
        prepared = {}
        for entry in json.loads(body)["entries"]:
            txn, at = entry["data"].get("txn_id"), datetime.fromisoformat(entry["at"]).timestamp()
            if entry.get("role", "participant") != "participant" or not txn:
                continue
            payload = entry["data"].get("payload") or {}
            if entry["type"] == "Prepared" and payload.get("type") == "AddPhotos":
                prepared[txn] = (len(payload["photos"]), at)
            elif entry["type"] in ("Committed", "Aborted") and txn in prepared:
                photos, since = prepared.pop(txn)
                held.setdefault((photos, since > split), []).append(at - since)
    return held


async def run(args) -> None:
    print(f"machine: {weather.machine()}")
    print(f"making {args.photos} photos of {WIDTH}x{HEIGHT} ...", flush=True)
    photos = [phone_photo(seed=100 + i) for i in range(args.photos)]
    print("sizes uploaded: " + ", ".join(f"{len(p) / 1e6:.1f} MB" for p in photos))
    sites = ProxiedSites(4, args.keep).start()
    rate = args.rate_mbit * 1e6 / 8
    try:
        cookie_a = h.mint_cookie(h.cookie_secret(sites.settings_path))
        cookie_b = h.mint_cookie(h.cookie_secret(sites.settings_path))
        async with h.new_session(limit=16) as session:
            status, body = await h.post_json(session, f"{sites.urls[0]}/api/events",
                                             {"title": "ship then commit"}, cookie_a)
            event_id = h.expect(status, body, 201, "create event")["event_id"]
            sites.throttle(args.slow_site, rate)
            print(f"every link of site {args.slow_site} throttled to {args.rate_mbit} Mbit/s each way")

            big = asyncio.create_task(upload(session, sites.urls[0], event_id, photos, cookie_a))
            small: list[tuple[int, float]] = []
            n = 0
            while not big.done():
                await asyncio.sleep(0.5)
                status, answer, took = await upload(session, sites.urls[1], event_id,
                                                    [h.tiny_jpeg(n)], cookie_b)
                small.append((status, took))
                n += 1
            status_a, answer_a, took_a = await big
            a_answered = time.time()
            after = []
            for i in range(args.after):
                status, _, took = await upload(session, sites.urls[1], event_id,
                                               [h.tiny_jpeg(1000 + i)], cookie_b)
                after.append((status, took))
            small_after = sum(1 for s, _ in after if s == 201)
            expected = (sum(1 for s, _ in small if s == 201) + small_after
                        + (len(photos) if status_a == 201 else 0))
            deadline = time.monotonic() + 30
            while (found := await versions(session, sites, event_id, cookie_a)) != [expected] * 4:
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            locks = await lock_times(session, sites, event_id, a_answered)
            stats = sites.proxies.stats()
    finally:
        sites.stop()

    print(f"\nA: {len(photos)} photos at site 0 -> {status_a} in {took_a:.2f} s "
          f"({sum(map(len, photos)) / 1e6:.1f} MB uploaded); every site's version {found} "
          f"(expected {expected} everywhere)")
    if status_a != 201:
        print(f"   answer: {answer_a}")
    oks = [t for s, t in small if s == 201]
    if oks:
        print(f"B: {len(small)} small uploads at site 1 meanwhile: statuses "
              f"{sorted({s for s, _ in small})}, 201 p50 {statistics.median(oks) * 1000:.0f} ms, "
              f"max {max(oks) * 1000:.0f} ms")
    else:
        print(f"B: {len(small)} small uploads at site 1 meanwhile, none 201: {small}")
    print("lock time at the participants (Prepared -> Committed/Aborted, from the audit logs):")
    for (count, later), held in sorted(locks.items()):
        when = "after A's 201, nothing else running" if later else "while A's upload ran"
        print(f"  uploads of {count} photo(s), {when}: {len(held)} locks, p50 "
              f"{statistics.median(held) * 1000:.1f} ms, max {max(held) * 1000:.1f} ms")
    every = [x for held in locks.values() for x in held]
    print(f"  all: p50 {statistics.median(every) * 1000:.1f} ms over {len(every)} locks")
    oks_after = [t for s, t in after if s == 201]
    if oks_after:
        print(f"B after A: {len(after)} small uploads one after another: 201 p50 "
              f"{statistics.median(oks_after) * 1000:.0f} ms")
    print(f"proxies: {stats['throttled_bytes'] / 1e6:.1f} MB throttled, "
          f"{stats['forwarded_bytes'] / 1e6:.1f} MB forwarded in all; load {weather.load()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=4)
    parser.add_argument("--rate-mbit", type=float, default=10.0)
    parser.add_argument("--slow-site", type=int, default=3)
    parser.add_argument("--after", type=int, default=10, help="small uploads after A's, for a baseline")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs, stores)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
