"""Time the upload path's image work: python benchmarks/bench_imaging.py

The test photos are smooth gradients with mild noise, which compress about like real photos
(a few bits per pixel); pure noise would make JPEG decoding several times slower.
"""

from __future__ import annotations

import hashlib
import statistics
import sys
import tempfile
import time
from io import BytesIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image  # noqa: E402

from eventstore.imaging import normalize_upload  # noqa: E402
from eventstore.collage import SCREEN, compose_collage  # noqa: E402
from eventstore.montage import MontageCache  # noqa: E402
from eventstore.photo_files import PhotoFiles  # noqa: E402

RUNS = 20
MAX_PIXELS = 50_000_000


def photo_jpeg(width: int, height: int, seed: int = 0) -> bytes:
    ramp = Image.linear_gradient("L").resize((width, height))
    noise = Image.effect_noise((width, height), 12 + seed)
    image = Image.merge("RGB", [ramp, ramp.transpose(Image.Transpose.ROTATE_90).resize((width, height)), noise])
    out = BytesIO()
    image.save(out, "JPEG", quality=92)
    return out.getvalue()


def p50_ms(action, runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def cached_next_version_ms(photos: list[bytes]) -> float:
    """MontageCache.get of the screen rendition of version n+1 when version n's is on disk and
    its photos decoded (what each commit builds)."""
    times = []
    for _ in range(RUNS):
        with tempfile.TemporaryDirectory() as scratch:
            files = PhotoFiles(Path(scratch) / "files")
            shas = [hashlib.sha256(p).hexdigest() for p in photos]
            for sha, photo in zip(shas, photos):
                files.write("photo", sha, photo)
            cache = MontageCache(Path(scratch) / "montages", files)
            cache.get("0e0e-be4c", shas[:-1], SCREEN)
            started = time.perf_counter()
            cache.get("0e0e-be4c", shas, SCREEN)
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    rows = []
    for width, height in ((1200, 900), (4000, 3000)):
        upload = photo_jpeg(width, height)
        label = f"normalize_upload {width}x{height} JPEG ({len(upload) / 1e6:.1f} MB)"
        rows.append((label, p50_ms(lambda: normalize_upload(upload, max_pixels=MAX_PIXELS))))
    photos = [normalize_upload(photo_jpeg(1200, 900, seed), max_pixels=MAX_PIXELS).jpeg for seed in range(10)]
    rows.append(("compose_collage (screen) of 10 photos (decode all)", p50_ms(lambda: compose_collage(photos, SCREEN))))
    rows.append(("MontageCache.get screen v10 after v9 cached", cached_next_version_ms(photos)))
    width = max(len(label) for label, _ in rows)
    print(f"{'operation':<{width}}  p50 ms ({RUNS} runs)")
    for label, ms in rows:
        print(f"{label:<{width}}  {ms:8.1f}")


if __name__ == "__main__":
    main()
