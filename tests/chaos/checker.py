"""The checker: the history, every site's final views and every site's stored log, against
the invariants (invariants.py, history_checks.py). Each violation names its event, sites and
operations; those of known service bugs (invariants.KNOWN_BUGS) are marked and do not count.

    python -m tests.chaos.checker RUN_DIR [--strict]   # check a finished run again; 1 on violations
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

from tests.chaos.history import INFO, Op, pair_ops, read_history
from tests.chaos.history_checks import BY_HISTORY
from tests.chaos.invariants import BY_LOGS, EventEvidence, Violation
from tests.chaos.observe import ROUND_BOUND_S, load, read_logs
from tests.chaos.replay import replay
from web.settings import load_settings


def _event_of(op: Op) -> str | None:
    return op.value.get("event_id") or op.result.get("event_id")


def check(ops: list[Op], logs: dict, views: dict, digests: dict, healing: dict,
          site_dirs: dict[int, Path] | None = None,
          round_bound_s: float = ROUND_BOUND_S) -> list[Violation]:
    """logs: event -> site -> LogEntry list; views: event -> site -> final API view;
    digests: event -> site -> published montage sha256; healing: what observe.py recorded;
    site_dirs: site -> its data folder, to check that committed photos are files there."""
    out = _run_level(ops, healing)
    by_event: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        if event_id := _event_of(op):
            by_event[event_id].append(op)
    for event_id, event_ops in by_event.items():
        created = [o for o in event_ops if o.f == "create" and o.outcome == "ok"]
        if created and event_id not in logs:
            out.append(Violation("acknowledged", event_id, (), "a created (201) event has no log at any "
                                 "site", tuple(o.describe() for o in created)))
    creates = {op.value.get("title"): op for op in ops if op.f == "create"}  # titles are unique
    for event_id in sorted(logs):
        replayed = {site: replay(event_id, site, entries) for site, entries in logs[event_id].items()}
        event_ops = list(by_event.get(event_id, []))
        titles = {log.final.title for log in replayed.values() if log.final.exists}
        event_ops += [creates[t] for t in titles if t in creates and creates[t] not in event_ops]
        evidence = EventEvidence(
            event_id,
            replayed,
            views.get(event_id, {}),
            digests.get(event_id, {}),
            event_ops,
            healing.get("final_wall", 0.0),
            round_bound_s,
            site_dirs or {},
        )
        for invariant in BY_LOGS + BY_HISTORY:
            out += invariant(evidence)
    return out


def _run_level(ops: list[Op], healing: dict) -> list[Violation]:
    out = []
    for site, problem in healing.get("sites_not_ready", {}).items():
        out.append(Violation("liveness", None, (int(site),), f"site did not come back after healing: {problem}"))
    for site, left in healing.get("in_doubt_left", {}).items():
        out.append(Violation("liveness", None, (int(site),), f"still in doubt 30 s after healing: {left}"))
    for op in ops:
        status = op.result.get("status")
        if op.outcome == INFO and status is not None and not indefinite(op.result):
            out.append(Violation("api", _event_of(op), (op.site,), f"unexpected status {status}: "
                                 f"{op.result.get('error')}", (op.describe(),)))
    return out


def indefinite(result: dict) -> bool:
    """The API's one indefinite answer (API.md): the site could not learn in time whether the
    change happened. The history checks take it as unknown, like a timeout."""
    return result.get("status") == 504 and result.get("error") == "outcome_unknown"


def check_run(run_dir: Path) -> list[Violation]:
    settings = load_settings(run_dir / "settings.toml")
    ops = pair_ops(read_history(run_dir / "history.jsonl"))
    healing = load(run_dir, "healing.json")
    return check(ops, read_logs(settings), _int_sites(load(run_dir, "views.json")),
                 _int_sites(load(run_dir, "digests.json")), healing, site_dirs(settings))


def site_dirs(settings) -> dict[int, Path]:
    return {k: settings.site_dir(k) for k in settings.sites}


def _int_sites(data: dict) -> dict:
    return {event: {int(site): v for site, v in by_site.items()} for event, by_site in data.items()}


def new(violations: list[Violation], strict: bool = False) -> list[Violation]:
    """The violations that fail a run: all of them when strict, else those not known bugs."""
    return [v for v in violations if strict or not v.known]


def report(violations: list[Violation], out=sys.stdout) -> None:
    for v in violations:
        print(v, file=out)
    known = len(violations) - len(new(violations))
    print(f"checker: {len(new(violations))} violation(s), {known} of known bugs", file=out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Check a finished chaos run again.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--strict", action="store_true", help="known bugs fail the check too")
    args = parser.parse_args(argv)
    violations = check_run(args.run_dir)
    report(violations)
    return 1 if new(violations, args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
