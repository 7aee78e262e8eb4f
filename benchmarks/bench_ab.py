"""Create-event 2PC at two checkouts of this project, side by side: is a change faster?

    python benchmarks/bench_ab.py --before DIR [--after DIR] [--slices 6] [--duration 30]
                                  [--before-set KEY=VALUE ...] [--after-set KEY=VALUE ...]
    git archive COMMIT | tar -x -C /tmp/before   # a checkout of the code before the change

Two sets of 4 sites run at once (--before's code and --after's, this checkout by default), and
the measured seconds are cut into slices that alternate between them (who goes first alternates
too), so both see the same weather on a shared machine. Each slice runs the load of
bench_vs_postgres.py (POST /api/events to the sites in turn) at 1 client and at --clients.
Printed per set: p50 at 1 client, txn/s at --clients, and server CPU per create (the 4 site
processes); then after/before ratios from adjacent slice pairs (medians).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from contextlib import ExitStack, contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h  # noqa: E402
import _weather as weather  # noqa: E402
from bench_vs_postgres import FsyncWatch, combine, ours_slice  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="a checkout of the code before")
    parser.add_argument("--after", type=Path, default=h.ROOT, help="default: this checkout")
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds per row and set")
    parser.add_argument("--slices", type=int, default=6)
    parser.add_argument("--clients", type=int, default=16)
    for name in ("before", "after"):
        parser.add_argument(f"--{name}-set", action="append", default=[], metavar="KEY=VALUE",
                            help=f"a settings.toml line for the {name} set only (e.g. max_actors=256)")
    args = parser.parse_args()
    print(f"machine: {weather.machine()}", flush=True)
    names = ("before", "after")
    part = args.duration / args.slices
    parts = {(name, mode): [] for name in names for mode in ("seq", "conc")}
    with ExitStack() as stack, FsyncWatch() as watch:
        sites = {name: stack.enter_context(_running(getattr(args, name).resolve(),
                                                    dict(kv.split("=", 1) for kv in getattr(args, f"{name}_set"))))
                 for name in names}
        for i in range(args.slices):
            for mode, clients in (("seq", 1), ("conc", args.clients)):
                for name in names if i % 2 == 0 else names[::-1]:
                    parts[(name, mode)].append(asyncio.run(ours_slice(sites[name], clients, part)))
        results = {key: combine(value, 1 if key[1] == "seq" else args.clients, watch)
                   for key, value in parts.items()}
    rows = [[name, mode, r["n"], f"{r['per_s']:.0f}", f"{r['p50']:.2f}", f"{r['p99']:.2f}",
             f"{r['server_cpu_ms']:.2f}", "-" if r["gc_cpu_ms"] is None else f"{r['gc_cpu_ms']:.2f}", r["load"]]
            for (name, mode), r in results.items()]
    print(h.table(["code", "load", "n", "txn/s", "p50 ms", "p99 ms", "server CPU ms/txn",
                   "of it the collector", "1-min load per slice"], rows))
    for mode, what, key in (("seq", "p50 at 1 client", "p50s"), ("conc", f"txn/s at {args.clients}", "rates")):
        pairs = zip(results[("after", mode)][key], results[("before", mode)][key])
        print(f"after/before, {what} (median of slice pairs): "
              f"{statistics.median(a / b for a, b in pairs):.2f}")
    cpu = [1000 * a["server_cpu"] / max(1, a["done"]) / (1000 * b["server_cpu"] / max(1, b["done"]))
           for mode in ("seq", "conc") for a, b in zip(parts[("after", mode)], parts[("before", mode)])]
    print(f"after/before, server CPU per create (median of slice pairs): {statistics.median(cpu):.2f}")
    print(f"at the end: {weather.conditions()}")
    return 0


@contextmanager
def _running(root: Path, settings: dict):
    sites = h.Sites(4, root=root, settings=settings)
    try:
        yield sites.start()
    finally:
        sites.stop()


if __name__ == "__main__":
    sys.exit(main())
