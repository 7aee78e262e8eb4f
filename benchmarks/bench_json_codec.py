"""The JSON API's codec alone: web.json_response (json.dumps) against web.json_codec (msgspec),
on the answers the API sends most (an event with N photos, a create's answer, an error) and the
bodies it parses (a vote, a title).

    python benchmarks/bench_json_codec.py [--photos 10] [--repeat 5]

Prints microseconds per call (best of --repeat timings of a loop), and the ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h  # noqa: E402
import _weather as weather  # noqa: E402
from aiohttp import web  # noqa: E402

from web.json_codec import json_response, loads  # noqa: E402


def event_answer(photos: int) -> dict:
    users = [uuid.uuid4().hex for _ in range(min(photos, 10))]
    return {
        "event_id": str(uuid.uuid4()), "title": "Summer picnic at the lake", "home_site": 0, "site": 2,
        "state": "open", "montage_version": photos, "photo_count": photos,
        "photos": [{"photo_id": uuid.uuid4().hex, "sha256": uuid.uuid4().hex * 2, "submitter": users[i % len(users)],
                    "submitter_name": "Ann", "site": i % 4, "version": i + 1} for i in range(photos)],
        "submitters": users, "submitter_count": len(users), "vote": None, "last_outcome": None,
        "published_version": None, "home_site_reachable": True,
        "you": {"user_id": users[0] if users else "x", "is_submitter": True},
    }


def per_call_us(fn, repeat: int) -> float:
    number, _ = timeit.Timer(fn).autorange()
    return min(timeit.Timer(fn).repeat(repeat, number)) / number * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {weather.machine()}", flush=True)
    answers = {
        f"answer: an event with {args.photos} photos": event_answer(args.photos),
        "answer: an event with 100 photos": event_answer(100),
        "answer: a create (201)": {"event_id": str(uuid.uuid4()), "url": "/events/x", "home_site": 0},
        "answer: an error": {"error": "voting_in_progress", "message": "A vote is running; photos wait."},
    }
    bodies = {
        "body: a vote": json.dumps({"montage_version": 3, "decision": "accept"}).encode(),
        "body: a title": json.dumps({"title": "Summer picnic at the lake"}).encode(),
    }
    rows = []
    for what, data in answers.items():
        before = per_call_us(lambda d=data: web.json_response(d), args.repeat)
        after = per_call_us(lambda d=data: json_response(d), args.repeat)
        rows.append([what, len(json.dumps(data)), f"{before:.1f}", f"{after:.1f}", f"{after / before:.2f}"])
    for what, body in bodies.items():
        before = per_call_us(lambda b=body: json.loads(b), args.repeat)
        after = per_call_us(lambda b=body: loads(b), args.repeat)
        rows.append([what, len(body), f"{before:.1f}", f"{after:.1f}", f"{after / before:.2f}"])
    print(h.table(["what", "bytes", "json us", "msgspec us", "ratio"], rows))
    print(f"at the end: {weather.conditions()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
