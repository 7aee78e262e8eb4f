"""Upload of a 4000x3000 JPEG (~3.5 MB) across 4 sites, beside ImageMagick's `montage`.

    python benchmarks/bench_upload_large.py [--uploads 20] [--per-event 10] [--poll-ms 5]
                                            [--imagemagick-runs 3] [--store sqlite|postgres]

1. Sites: 4 sites started by launcher.py on a scratch directory. One user uploads --uploads
   distinct photo-like 4000x3000 JPEGs (gradients plus noise, quality 92, ~3.5 MB), one after
   the other, to the sites in turn; a new event every --per-event uploads (so montages of 1..10
   photos). Measured per upload:
   - time to 201 (the photo normalised at the upload site, stored, a 2PC carrying it to every
     site, committed everywhere);
   - time until montage v+1 is served by every site: `GET /events/{id}/montage.jpg?v=N&size=screen`
     (the rendition pages show) on all 4
     sites with the uploader's cookie, every --poll-ms, until each answered 200 (counted from
     the start of the upload, and from its 201);
   - where the time went, from the sites' audit logs (`/api/events/{id}/audit` timestamps):
     request start -> Began at the upload site -> last Prepared -> Decided -> last Committed.
2. Imaging, in this process, with the sites stopped: ImageMagick's `montage` composing the same
   grid (4x3 cells of 256 px, 6 px gaps, JPEG quality 85) from 10 such photos, as is and with
   the JPEG size hint (`-define jpeg:size=`, decode at reduced scale); ours: the screen rendition
   of the collage of the 10 stored photos, and the pure montage step MontageCache.get of the
   screen rendition for version 10 after version 9 is cached (one new photo decoded); one
   normalize_upload.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h  # noqa: E402
import _profiles as profiling  # noqa: E402
import _weather as weather  # noqa: E402
from PIL import Image  # noqa: E402

WIDTH, HEIGHT = 4000, 3000


class PhotoMaker:
    """Distinct ~3.5 MB photos: one photo-like base image, each copy with a random patch
    (so every upload has its own sha256 and is written at every site, as a real one is)."""

    def __init__(self, seed: int = 1):
        buf = h.photo_jpeg(WIDTH, HEIGHT, seed)
        self.base = Image.open(io.BytesIO(buf)).convert("RGB")
        self.rng = random.Random(seed)

    def make(self) -> bytes:
        image = self.base.copy()
        patch = Image.effect_noise((240, 180), 60).convert("RGB")
        image.paste(patch, (self.rng.randrange(WIDTH - 240), self.rng.randrange(HEIGHT - 180)))
        out = io.BytesIO()
        image.save(out, "JPEG", quality=92)
        return out.getvalue()


# --- the sites ---------------------------------------------------------------------------------
async def poll_montage(session, sites: h.Sites, event_id: str, version: int, cookie: str,
                       poll_s: float, timeout: float = 60.0) -> list[float]:
    """perf_counter time at which each site first answered 200 for montage ?v=version."""
    async def one(url: str) -> float:
        deadline = time.perf_counter() + timeout
        while True:
            status, _ = await h.get(session, f"{url}/events/{event_id}/montage.jpg?v={version}&size=screen", cookie)
            if status == 200:
                return time.perf_counter()
            if time.perf_counter() > deadline:
                raise SystemExit(f"montage v{version} of {event_id} not served by {url} after {timeout} s")
            await asyncio.sleep(poll_s)

    return list(await asyncio.gather(*(one(u) for u in sites.urls)))


async def audit_phases(session, sites: h.Sites, event_id: str) -> dict[str, dict]:
    """txn_id -> {'began', 'decided', 'prepared': [..], 'committed': [..]} as epoch seconds."""
    txns: dict[str, dict] = {}
    for url in sites.urls:
        status, body = await h.get(session, f"{url}/api/events/{event_id}/audit")
        if status != 200:
            continue
        import json

        for entry in json.loads(body)["entries"]:
            txn = entry["data"].get("txn_id")
            if not txn:
                continue
            at = datetime.fromisoformat(entry["at"]).timestamp()
            t = txns.setdefault(txn, {"prepared": [], "committed": []})
            kind = entry["type"]
            if kind == "Began":
                t["began"] = at
                t["type"] = (entry["data"].get("payload") or {}).get("type")
            elif kind == "Decided":
                t["decided"] = at
            elif kind == "Prepared":
                t["prepared"].append(at)
            elif kind == "Committed":
                t["committed"].append(at)
    return txns


async def run_uploads(sites: h.Sites, photos: list[bytes], per_event: int, poll_s: float) -> dict:
    cookie = h.mint_cookie(h.cookie_secret(sites.settings_path))
    to_201, to_montage, montage_after_201, phases = [], [], [], []
    async with h.new_session(limit=16) as session:
        events = []
        for i, jpeg in enumerate(photos):
            if i % per_event == 0:
                status, body = await h.post_json(session, f"{sites.urls[(i // per_event) % 4]}/api/events",
                                                 {"title": f"large uploads {i // per_event}"}, cookie)
                event_id = h.expect(status, body, 201, "create event")["event_id"]
                events.append((event_id, []))
            site = i % sites.count
            wall0, start = time.time(), time.perf_counter()
            status, body = await h.upload(session, sites.urls[site], event_id, jpeg, cookie)
            got_201 = time.perf_counter()
            version = h.expect(status, body, 201, "upload")["montage_version"]
            served = await poll_montage(session, sites, event_id, version, cookie, poll_s)
            to_201.append(got_201 - start)
            to_montage.append(max(served) - start)
            montage_after_201.append(max(served) - got_201)
            events[-1][1].append((wall0, got_201 - start))
        for event_id, uploads in events:  # the audit logs, once the run is over
            txns = await audit_phases(session, sites, event_id)
            ordered = sorted((t for t in txns.values() if t.get("type") == "AddPhotos"),
                             key=lambda t: t["began"])
            for (wall0, took), t in zip(uploads, ordered):
                if len(t["prepared"]) == sites.count and len(t["committed"]) == sites.count and "decided" in t:
                    phases.append({
                        "request start -> Began at upload site": t["began"] - wall0,
                        "Began -> last site Prepared": max(t["prepared"]) - t["began"],
                        "last Prepared -> Decided": t["decided"] - max(t["prepared"]),
                        "Decided -> last site Committed": max(t["committed"]) - t["decided"],
                        "last Committed -> 201 at client": wall0 + took - max(t["committed"]),
                    })
    return {"to_201": to_201, "to_montage": to_montage, "montage_after_201": montage_after_201,
            "phases": phases}


# --- imaging ---------------------------------------------------------------------------------
def imagemagick_rows(files: list[Path], runs: int, scratch: Path) -> list[list]:
    montage = shutil.which("montage")
    if montage is None:
        return [["ImageMagick montage", "not installed (apt-get install imagemagick failed?)", "", ""]]
    version = subprocess.run([montage, "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    base = [montage, "-tile", "4x3", "-geometry", "256x256+3+3", "-background", "#18181c",
            "-quality", "85"]
    rows = []
    for label, extra in (("ImageMagick montage, 10 photos -> grid", []),
                         ("ImageMagick montage -define jpeg:size=512x384", ["-define", "jpeg:size=512x384"])):
        times, error = [], ""
        for _ in range(runs):
            started = time.perf_counter()
            done = subprocess.run(base + extra + [str(f) for f in files] + [str(scratch / "im.jpg")],
                                  capture_output=True, text=True, timeout=300)
            if done.returncode != 0:
                error = done.stderr.strip()[:160]
                break
            times.append(time.perf_counter() - started)
        if error:
            rows.append([label, "failed: " + error, "", weather.load()])
        else:
            rows.append([label, f"{statistics.median(times) * 1000:.0f}", f"{max(times) * 1000:.0f}", weather.load()])
    rows.append([f"  ({version.strip()})", "", "", ""])
    return rows


def ours_rows(photos: list[bytes], runs: int) -> list[list]:
    from bench_imaging import cached_next_version_ms
    from eventstore.imaging import normalize_upload
    from eventstore.collage import SCREEN, compose_collage

    def timed(action, n):
        times = []
        for _ in range(n):
            started = time.perf_counter()
            action()
            times.append(time.perf_counter() - started)
        return statistics.median(times) * 1000, max(times) * 1000

    normalized = [normalize_upload(p, max_pixels=50_000_000) for p in photos]
    stored = [n.jpeg for n in normalized]
    rows = []
    p50, worst = timed(lambda: normalize_upload(photos[0], max_pixels=50_000_000), runs)
    rows.append(["ours: normalize_upload, one 4000x3000 photo (once per upload)", f"{p50:.0f}", f"{worst:.0f}", weather.load()])
    def full_rebuild() -> bytes:
        return compose_collage([normalize_upload(p, max_pixels=50_000_000).jpeg for p in photos], SCREEN)

    p50, worst = timed(full_rebuild, max(1, runs // 5))
    rows.append(["ours: 10 x normalize_upload + compose (full rebuild from originals)", f"{p50:.0f}", f"{worst:.0f}", weather.load()])
    p50, worst = timed(lambda: compose_collage(stored, SCREEN), runs)
    rows.append(["ours: compose_collage (screen) of the 10 photos (decode all)", f"{p50:.1f}", f"{worst:.1f}", weather.load()])
    step = cached_next_version_ms(stored)
    rows.append(["ours: MontageCache.get v10 after v9 cached (the montage step)", f"{step:.1f}", "", weather.load()])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--per-event", type=int, default=10)
    parser.add_argument("--poll-ms", type=float, default=5.0)
    parser.add_argument("--imagemagick-runs", type=int, default=3)
    parser.add_argument("--imaging-runs", type=int, default=10)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--profile", choices=("wall", "cpu"),
                        help="run every site under benchmarks/profile_site.py during the uploads "
                             "and print the profiles (the figures are then not comparable)")
    weather.add_quiet_arguments(parser)
    args = parser.parse_args()
    print(f"machine: {weather.machine()}", flush=True)

    maker = PhotoMaker()
    photos = [maker.make() for _ in range(max(args.uploads, 10))]
    sizes = [len(p) / 1e6 for p in photos]
    print(f"{len(photos)} distinct {WIDTH}x{HEIGHT} JPEGs, {min(sizes):.2f}-{max(sizes):.2f} MB "
          f"(sha256 {hashlib.sha256(photos[0]).hexdigest()[:12]}...)", flush=True)

    pg = None
    database = "sqlite"
    try:
        if args.store == "postgres":
            pg = h.postgres_server(max_connections=200)
            for k in range(4):
                pg.create_database(f"photos_site{k}")
            database = pg.url("photos_site{site}")
        profiles = profiling.SiteProfiles(args.profile) if args.profile else None
        with h.running_sites(4, database, env=profiles.env if profiles else None) as sites:
            print("uploads: " + weather.wait_quiet(args.wait_quiet, args.wait_quiet_max_s), flush=True)
            if profiles:
                profiles.start(sites)
            load_before = weather.load()
            result = asyncio.run(run_uploads(sites, photos[:args.uploads], args.per_event, args.poll_ms / 1000))
            load_after = weather.load()
        if profiles:
            profiles.show("the uploads (each site coordinates a quarter of them and takes part in all)")
    finally:
        if pg is not None:
            pg.stop()

    rows = []
    for label, key in (("upload -> 201", "to_201"),
                       ("upload -> montage v+1 served by all 4 sites", "to_montage"),
                       ("  of which after the 201", "montage_after_201")):
        p50, p99 = h.p50_p99_ms(result[key])
        rows.append([label, len(result[key]), f"{p50:.0f}", f"{p99:.0f}", f"{max(result[key]) * 1000:.0f}"])
    print()
    print(f"4 sites ({args.store} store), {args.uploads} sequential uploads of a {WIDTH}x{HEIGHT} JPEG "
          f"(~{statistics.mean(sizes):.1f} MB), a new event every {args.per_event}; polling every "
          f"{args.poll_ms:g} ms; load average before {load_before}, after {load_after}")
    print(h.table(["measure", "n", "p50 ms", "p99 ms", "max ms"], rows))
    if result["phases"]:
        print()
        print("where the time went (audit-log timestamps; medians over "
              f"{len(result['phases'])} uploads)")
        keys = list(result["phases"][0])
        print(h.table(["phase", "p50 ms", "max ms"],
                      [[k, f"{statistics.median(p[k] for p in result['phases']) * 1000:.0f}",
                        f"{max(p[k] for p in result['phases']) * 1000:.0f}"] for k in keys]))

    scratch = Path(tempfile.mkdtemp(prefix="bench-upload-im-"))
    try:
        files = []
        for i, jpeg in enumerate(photos[:10]):
            files.append(scratch / f"p{i}.jpg")
            files[-1].write_bytes(jpeg)
        print("imaging: " + weather.wait_quiet(args.wait_quiet, args.wait_quiet_max_s), flush=True)
        im = imagemagick_rows(files, args.imagemagick_runs, scratch)
        ours = ours_rows(photos[:10], args.imaging_runs)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print()
    print(f"the same 4x3 grid of 10 {WIDTH}x{HEIGHT} photos (sites stopped; "
          f"ImageMagick {args.imagemagick_runs} runs, ours {args.imaging_runs} runs / 20 for the step)")
    print(h.table(["composer", "p50 ms", "max ms", "load after"], im + ours))
    print(f"\nat the end: {weather.conditions()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
