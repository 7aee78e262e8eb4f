"""Where a create's time goes at 1 client, stage by stage, from the records' own time stamps.

    python benchmarks/bench_create_stages.py [--creates 300] [--checkout DIR ...]

Starts 4 sites (launcher.py, SQLite), makes `--creates` events one after another, each at the
next site in turn, then reads every site's log of each event (`GET /api/events/{id}/audit`) and
takes the time stamps its records were made with (a record is stamped when its step is taken,
before it is stored). The sites and this client share one clock, so the stages line up:

    client sent -> Began (the coordinator's step) -> the last remote Prepared -> Decided
    -> the last Committed -> Acknowledged -> the client has its 201

Each stage's median over the creates, and the sum of the medians against the median create.
Several `--checkout`s run one after another, fresh sites each (an A/B of where time moved; the
machine's weather moves every figure, so read differences of ~0.1 ms with care).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402
import _weather as weather  # noqa: E402

STAGES = ("client -> Began", "-> last remote Prepared", "-> Decided", "-> last Committed",
          "-> Acknowledged", "-> client has its 201")


async def run(sites: h.Sites, creates: int) -> list[list[float]]:
    cookie = h.mint_cookie(h.cookie_secret(sites.settings_path))
    made: list[tuple[str, int, float, float]] = []
    async with h.new_session() as session:
        for n in range(20):  # warm-up: channels open, code paths taken
            status, body = await h.post_json(session, f"{sites.urls[n % 4]}/api/events", {"title": "w"}, cookie)
            h.expect(status, body, 201, "create event")
        for n in range(creates):
            home = n % sites.count
            sent = time.time()
            status, body = await h.post_json(session, f"{sites.urls[home]}/api/events", {"title": f"s{n}"}, cookie)
            answered = time.time()
            h.expect(status, body, 201, "create event")
            made.append((body["event_id"], home, sent, answered))
        rows = []
        for event_id, home, sent, answered in made:
            logs = {}
            for k, url in enumerate(sites.urls):
                async with session.get(f"{url}/api/events/{event_id}/audit") as r:
                    logs[k] = (await r.json())["entries"]
            rows.append(stages(logs, home, sent, answered))
    return rows


def stages(logs: dict[int, list[dict]], home: int, sent: float, answered: float) -> list[float]:
    def at(site: int, kind: str) -> float:
        return next(datetime.fromisoformat(e["at"]).timestamp() for e in logs[site] if e["type"] == kind)

    began, decided, acknowledged = at(home, "Began"), at(home, "Decided"), at(home, "Acknowledged")
    prepared = max(at(k, "Prepared") for k in logs if k != home)
    committed = max(at(k, "Committed") for k in logs)
    marks = [sent, began, prepared, decided, committed, acknowledged, answered]
    return [(b - a) * 1000 for a, b in zip(marks, marks[1:])]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=300)
    parser.add_argument("--checkout", type=Path, action="append", help="code to run (default: this checkout)")
    args = parser.parse_args()
    print(weather.machine())
    for root in [c.resolve() for c in (args.checkout or [h.ROOT])]:
        sites = h.Sites(4, root=root).start()
        try:
            rows = asyncio.run(run(sites, args.creates))
        finally:
            sites.stop()
        medians = [statistics.median(column) for column in zip(*rows)]
        whole = statistics.median(sum(row) for row in rows)
        print(f"\n{root}: {len(rows)} creates, median create {whole:.2f} ms (the stages' medians sum to "
              f"{sum(medians):.2f}); load {weather.load()}")
        print(h.table(["stage", "median ms", "p90 ms"],
                      [[name, f"{m:.2f}", f"{h.percentile(list(col), 90.0):.2f}"]
                       for name, m, col in zip(STAGES, medians, zip(*rows))]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
