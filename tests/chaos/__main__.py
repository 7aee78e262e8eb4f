"""python -m tests.chaos --sites 4 --seconds 120 --seed S: one chaos run, its summary, and
exit status 1 when the checker found a violation (or the harness itself failed)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.chaos.run import RunConfig, run, summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=4, choices=(3, 4))
    parser.add_argument("--seconds", type=float, default=120.0, help="how long the nemesis runs")
    parser.add_argument("--seed", type=int, default=1, help="same seed, same schedule of faults")
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--events", type=int, default=0,
                        help="events kept in play (default twice the sites; fewer: more contention)")
    parser.add_argument("--interval", type=float, default=0.8, help="mean seconds between fault starts (calm phases aside)")
    parser.add_argument("--voting-period", type=float, default=4.0)
    parser.add_argument("--duplicate-delivery", action="store_true",
                        help="the sites send every site-to-site message twice")
    parser.add_argument("--strict", action="store_true",
                        help="violations of known bugs (test_found_bugs.py) fail the run too")
    parser.add_argument("--out", type=Path, help="run directory (default test-artifacts/chaos/seed-S-TIME)")
    parser.add_argument("--plan", action="store_true", help="print the fault schedule and exit")
    args = parser.parse_args(argv)
    config = RunConfig(args.seed, args.sites, args.seconds, args.clients, args.events, args.interval,
                       args.voting_period, duplicate_delivery=args.duplicate_delivery, strict=args.strict, out=args.out)
    if args.plan:
        from tests.chaos.nemesis import plan
        for fault in plan(config.seed, config.sites, config.seconds, config.fault_interval):
            print(f"{fault.at:7.2f}  {fault.describe()}")
        return 0
    result = run(config)
    print(summary(result))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
