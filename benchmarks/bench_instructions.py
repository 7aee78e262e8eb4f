"""Instructions per create, counted by valgrind's callgrind: an A/B that the machine's weather
cannot move.

    python benchmarks/bench_instructions.py [--checkout DIR ...] [--n 200]

Timed benchmarks on this shared 2-core machine move 10-20 % run to run, more than most single
changes. callgrind counts the instructions a process executes, whatever else the machine does:
a run's total repeats to ~0.1 %, the per-create figure to ~2 % (the threads' batching varies a
little), so a change of ~4 % or more shows. Each checkout runs
`benchmarks/instructions_workload.py` (4 sites wired in one process, real actors and real
SQLite stores, messages handed over directly: bench_inprocess_create's set-up) twice under
callgrind, with 0 and with --n sequential creates after the same start-up and warm-up, each
ended by a start-up-scan checkpoint of every store (what a site does every 30 s). The
difference divided by --n is what one create costs in user space: the actors, the protocol
steps, the store's encoding and SQLite's own work, the checkpoint's share. Not counted: the
kernel (fsync, sockets), and what is not in the workload (HTTP, the site-to-site channels).
The creates are sequential, so none shares a forced write (11 commits a create, against ~2.8 at
16 clients): a change to the per-commit path weighs more here than under load. Runs two
callgrind processes at a time (one per core); ~1.5 min per checkout at --n 200.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKLOAD = Path(__file__).resolve().parent / "instructions_workload.py"


def instructions(checkout: Path, creates: int, scratch: Path) -> int:
    """Instructions callgrind counted for the workload with `creates` creates."""
    out = Path(tempfile.mkstemp(prefix=f"callgrind-{creates}-", suffix=".out", dir=scratch)[1])
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, str(WORKLOAD),
         str(checkout), str(creates), str(scratch)],
        capture_output=True, text=True, timeout=3600)
    found = re.search(r"Collected : (\d+)", run.stderr)
    if run.returncode != 0 or found is None or f"committed {creates}" not in run.stdout:
        raise SystemExit(f"the workload failed at {checkout} ({creates} creates):\n{run.stdout}\n{run.stderr[-2000:]}")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=Path, action="append",
                        help="code to count (repeat to compare; default: this checkout)")
    parser.add_argument("--n", type=int, default=200, help="creates counted")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is missing (Debian: apt-get install valgrind)")
    checkouts = [c.resolve() for c in (args.checkout or [ROOT])]
    scratch = Path(tempfile.mkdtemp(prefix="bench-instructions-"))
    try:
        runs = [(c, n) for c in checkouts for n in (0, args.n)]
        with ThreadPoolExecutor(2) as pool:
            counts = dict(zip(runs, pool.map(lambda run: instructions(*run, scratch), runs)))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"4 sites in one process, {args.n} sequential creates, each run ended by a checkpoint per store")
    print(f"{'code':<40} {'start-up + warm-up':>20} {'per create':>14} {'vs first':>9}")
    first = None
    for checkout in checkouts:
        per_create = (counts[(checkout, args.n)] - counts[(checkout, 0)]) / args.n
        first = first or per_create
        print(f"{str(checkout):<40} {counts[(checkout, 0)] / 1e6:>18.0f} M {per_create / 1e6:>12.2f} M "
              f"{per_create / first:>8.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
