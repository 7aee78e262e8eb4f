"""The hot event: 10 guests upload 3 phone photos each, all at once, to one event over 4 sites.

    python benchmarks/bench_hot_event.py [--runs 3] [--checkout DIR ...] [--per-request 1]
    git archive COMMIT | tar -x -C /tmp/before-hot   # a checkout of older code to compare

Each run starts 4 fresh sites through launcher.py on a scratch data directory (the code of one
--checkout; with several, the runs alternate between them, who goes first alternating too),
creates one event, and then sends every upload at once: guest g (own cookie) uploads at site
g % 4, each photo a request of its own (--per-request 3: one request with all three). Measured:

- time from the first request until every site shows montage_version == the photos committed
  (each site's live stream of the event, GET /api/events/{id}/stream, read meanwhile);
- per-upload time to 201 (p50/max), counting the retries it took (a request without an answer
  after 120 s is given up, and counted as failed);
- refusals by status and error code. Policy: the guest's client retries what API.md calls a
  definite refusal that is not about the photo (503 busy / site_unreachable /
  storage_unavailable) and an indefinite 504 after a randomised back-off (0.25 s doubling, at
  most --retries times), as a phone's upload queue would; a 4xx is final;
- CPU seconds of each site process during the run, and of the 4 together until SETTLED_S after
  all committed (work the commits set going, such as montages built ahead, is done by then);
- screen montage files the sites built (ahead or asked for) by then, and how many of them are of
  the final version;
- from the audit logs: upload transactions begun (each a 2PC) and how many aborted (conflicts
  with another upload of the event, retried by the coordinator), and the lock time at the
  participants (Prepared to Committed/Aborted).

Photos: 4000x3000 JPEGs (~3 MB), made once with Pillow from seeded noise and gradients (varied
content, the same bytes on every run), kept under the system's temp directory.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h  # noqa: E402
import _profiles as profiling  # noqa: E402
import _weather as weather  # noqa: E402
import aiohttp  # noqa: E402

WIDTH, HEIGHT = 4000, 3000
SETTLED_S = 3.0  # after all committed, the sites' CPU is read again this much later
RETRIED = {503, 504}


def phone_photo(seed: int) -> bytes:
    """A 4000x3000 JPEG, ~3 MB: a rotated gradient, a seeded block, and noise in 2x2 blocks
    (detail that survives the halving a site's normalising does)."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    noise = Image.frombytes("L", (WIDTH // 2, HEIGHT // 2), rng.randbytes(WIDTH * HEIGHT // 4))
    ramp = Image.linear_gradient("L").rotate(rng.randint(0, 359)).resize((WIDTH, HEIGHT))
    picture = Image.merge("RGB", [ramp, ramp.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
                                  Image.new("L", (WIDTH, HEIGHT), rng.randint(0, 255))])
    x, y = rng.randint(0, WIDTH - 1000), rng.randint(0, HEIGHT - 1000)
    ImageDraw.Draw(picture).ellipse((x, y, x + 999, y + 999), fill=tuple(rng.randbytes(3)))
    grain = noise.resize((WIDTH, HEIGHT), Image.Resampling.NEAREST).convert("RGB")
    out = io.BytesIO()
    Image.blend(picture, grain, 0.15).save(out, "JPEG", quality=88)
    return out.getvalue()


def photos(count: int) -> list[bytes]:
    folder = Path(tempfile.gettempdir()) / f"bench-hot-photos-{WIDTH}x{HEIGHT}-v1"
    folder.mkdir(exist_ok=True)
    made = []
    for i in range(count):
        path = folder / f"{i}.jpg"
        if not path.exists():
            path.with_suffix(".part").write_bytes(phone_photo(1000 + i))
            path.with_suffix(".part").rename(path)
        made.append(path.read_bytes())
    return made


def multipart(jpegs: list[bytes]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [(f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"p{i}.jpg\"\r\n"
              f"Content-Type: image/jpeg\r\n\r\n").encode() + jpeg + b"\r\n" for i, jpeg in enumerate(jpegs)]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


async def upload(session, url: str, event_id: str, jpegs: list[bytes], cookie: str, retries: int,
                 refusals: list) -> tuple[bool, float, int]:
    """(committed, seconds to the final answer, attempts); each refusal is noted in `refusals`."""
    body, content_type = multipart(jpegs)
    started = time.perf_counter()
    for attempt in range(retries + 1):
        try:
            async with session.post(f"{url}/api/events/{event_id}/photos", data=body,
                                    headers={"Content-Type": content_type, "Cookie": cookie}) as r:
                answer = await r.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as e:  # given up: the outcome is unknown
            refusals.append(f"no answer ({type(e).__name__})")
            break
        if r.status == 201:
            return True, time.perf_counter() - started, attempt + 1
        refusals.append(f"{r.status} {answer.get('error')}")
        if r.status not in RETRIED or attempt == retries:
            break
        await asyncio.sleep(random.uniform(0.5, 1.0) * 0.25 * 2 ** attempt)
    return False, time.perf_counter() - started, attempt + 1


async def watch(session, url: str, event_id: str, cookie: str, seen: dict, started: float) -> None:
    """seen[version] = seconds after `started` at which this site first showed it, read from the
    event's live stream (one server-sent event per change; cheaper and finer than polling),
    opened again if the site ends it (it does when this busy client reads it too slowly)."""
    while True:
        try:
            async with session.get(f"{url}/api/events/{event_id}/stream", headers={"Cookie": cookie},
                                   timeout=aiohttp.ClientTimeout(total=None, sock_read=None)) as r:
                async for line in r.content:
                    if line.startswith(b"data:"):
                        version = json.loads(line[5:])["montage_version"]
                        seen.setdefault(version, time.perf_counter() - started)
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.02)


async def audit(session, urls: list[str], event_id: str) -> dict:
    """Upload transactions begun and aborted (coordinators), lock times (participants)."""
    begun = aborted = 0
    locks = []
    for url in urls:
        status, body = await h.get(session, f"{url}/api/events/{event_id}/audit")
        if status != 200:
            continue
        prepared = {}
        for entry in json.loads(body)["entries"]:
            data, at = entry["data"], datetime.fromisoformat(entry["at"]).timestamp()
            payload = data.get("payload") or {}
            if entry.get("role") == "coordinator":
                if entry["type"] == "Began" and payload.get("type") == "AddPhotos":
                    begun += 1
                    prepared[("began", data["txn_id"])] = at
                elif entry["type"] == "Decided" and ("began", data.get("txn_id")) in prepared:
                    aborted += not data.get("commit")
                continue
            if entry["type"] == "Prepared" and payload.get("type") == "AddPhotos":
                prepared[data["txn_id"]] = at
            elif entry["type"] in ("Committed", "Aborted") and data.get("txn_id") in prepared:
                locks.append(at - prepared.pop(data["txn_id"]))
    return {"begun": begun, "aborted": aborted, "locks": locks}


async def one_run(sites: h.Sites, jpegs: list[bytes], args) -> dict:
    secret = h.cookie_secret(sites.settings_path)
    guests = [h.mint_cookie(secret) for _ in range(args.guests)]
    async with h.new_session(limit=0) as session:
        status, created = await h.post_json(session, f"{sites.urls[0]}/api/events",
                                            {"title": "The hot event"}, guests[0])
        h.expect(status, created, 201, "create event")
        event_id = created["event_id"]
        per_guest = [jpegs[g * args.photos:(g + 1) * args.photos] for g in range(args.guests)]
        requests = [(g, batch) for g, mine in enumerate(per_guest)
                    for batch in (mine[i:i + args.per_request] for i in range(0, len(mine), args.per_request))]
        processes = [sites.process(k) for k in range(sites.count)]
        cpu_before = [h.cpu_seconds([p]) for p in processes]
        refusals: list[str] = []
        seen: list[dict] = [{} for _ in sites.urls]
        started = time.perf_counter()
        watchers = [asyncio.create_task(watch(session, url, event_id, guests[0], seen[k], started))
                    for k, url in enumerate(sites.urls)]
        while not all(seen):  # every stream open (it sends the event as it is first)
            await asyncio.sleep(0.005)
        for s in seen:
            s.clear()
        started = time.perf_counter()
        answers = await asyncio.gather(*(
            upload(session, sites.urls[g % sites.count], event_id, batch, guests[g], args.retries, refusals)
            for g, batch in requests))
        committed = sum(len(batch) for (_, batch), (ok, _, _) in zip(requests, answers) if ok)
        deadline = time.perf_counter() + 60
        while (any(not any(v >= committed for v in s) for s in seen)
               and time.perf_counter() < deadline):
            await asyncio.sleep(0.01)
        for w in watchers:
            w.cancel()
        ended = await asyncio.gather(*watchers, return_exceptions=True)
        for k, (s, e) in enumerate(zip(seen, ended)):
            if committed and not any(v >= committed for v in s):
                raise SystemExit(f"site {k} showed at most version {max(s, default=None)} of "
                                 f"{committed} within 60 s (its stream: {e!r})")
        cpu = [h.cpu_seconds([p]) - b for p, b in zip(processes, cpu_before)]
        everywhere = (max(min(t for v, t in s.items() if v >= committed) for s in seen)
                      if committed else float("nan"))
        found = await audit(session, sites.urls, event_id)
        # What the commits set going after the last of them (a montage built ahead once the
        # event's commits settled) is the hot event's work too: counted SETTLED_S on.
        await asyncio.sleep(max(0.0, started + everywhere + SETTLED_S - time.perf_counter()))
        cpu_settled = [h.cpu_seconds([p]) - b for p, b in zip(processes, cpu_before)]
    montages = sorted(sites.data_dir.glob(f"site-*/montages/{event_id}/v*-screen-*.jpg"))
    return {
        "cpu_settled": cpu_settled,
        "montages": len(montages),
        "final_montages": sum(m.name.startswith(f"v{committed}-") for m in montages),
        "all_committed_s": everywhere,
        "committed": committed,
        "to_201": [t for ok, t, _ in answers if ok],
        "retried": sum(n - 1 for _, _, n in answers),
        "refusals": refusals,
        "failed": sum(not ok for ok, _, _ in answers),
        "cpu": cpu,
        "load": weather.load().split()[0],
        **found,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per checkout")
    parser.add_argument("--checkout", type=Path, action="append",
                        help="code to run (repeat to compare; default: this checkout)")
    parser.add_argument("--guests", type=int, default=10)
    parser.add_argument("--photos", type=int, default=3, help="photos per guest")
    parser.add_argument("--per-request", type=int, default=1, help="photos per upload request")
    parser.add_argument("--retries", type=int, default=5, help="a guest's retries of a 503/504")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folders")
    parser.add_argument("--profile", choices=profiling.PROFILE_MODES, help=profiling.PROFILE_HELP)
    args = parser.parse_args()
    checkouts = [c.resolve() for c in (args.checkout or [h.ROOT])]
    print(f"machine: {weather.machine()}", flush=True)
    jpegs = photos(args.guests * args.photos)
    print(f"{len(jpegs)} photos of {WIDTH}x{HEIGHT}, {min(map(len, jpegs)) / 1e6:.1f}-"
          f"{max(map(len, jpegs)) / 1e6:.1f} MB; {args.per_request} per request; "
          f"guest g uploads at site g % 4", flush=True)
    rows = []
    for i in range(args.runs):
        for root in checkouts if i % 2 == 0 else checkouts[::-1]:
            profiles = profiling.site_profiles(args.profile)
            sites = h.Sites(4, keep=args.keep, root=root, env=profiles.env if profiles else None)
            try:
                sites.start()
                time.sleep(1.0)  # the start-up's own CPU out of the way
                if profiles:
                    profiles.start(sites)
                r = asyncio.run(one_run(sites, jpegs, args))
                if profiles:
                    profiles.finish()
            finally:
                sites.stop()
            if profiles:
                profiles.show(f"hot event run {i + 1} ({_name(root)})")
            to_201 = r["to_201"] or [float("nan")]
            refused = ", ".join(f"{n}x {code}" for code, n in
                                sorted(_count(r["refusals"]).items())) or "none"
            locks = r["locks"] or [float("nan")]
            rows.append([_name(root), i + 1, f"{r['all_committed_s']:.2f}", r["committed"],
                         f"{statistics.median(to_201):.2f}", f"{max(to_201):.2f}", refused,
                         r["retried"], r["failed"], f"{r['begun']}/{r['aborted']}",
                         f"{statistics.median(locks) * 1000:.0f}/{max(locks) * 1000:.0f}",
                         "/".join(f"{c:.1f}" for c in r["cpu"]), f"{sum(r['cpu']):.1f}",
                         f"{sum(r['cpu_settled']):.1f}", f"{r['montages']} ({r['final_montages']})",
                         r["load"]])
            print(h.table(HEADER, rows[-1:]), flush=True)
    print()
    print(h.table(HEADER, rows))
    print(f"at the end: {weather.conditions()}")
    return 0


HEADER = ["code", "run", "all committed s", "photos", "201 p50 s", "201 max s", "refusals",
          "retries", "failed", "2PCs begun/aborted", "lock p50/max ms", "CPU s per site",
          "CPU s", f"CPU s +{SETTLED_S:.0f} s", "screen montages (final)", "load"]


def _count(items: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


def _name(root: Path) -> str:
    return "this" if root == h.ROOT else root.name


if __name__ == "__main__":
    sys.exit(main())
