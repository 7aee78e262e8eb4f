"""One chaos run: start sites behind link proxies, run the workload and the nemesis, heal,
settle, read everything, check it, and summarise.

Phases (each bounded in time): start (sites ready) -> chaos for `seconds` -> heal (links ok,
sites resumed, dead or armed sites restarted clean, all ready) -> clients finish their last
operation -> nothing in doubt (at most 30 s after healing) -> rounds over (at most the latest
deadline + 15 s) -> final views and published montages -> sites stopped -> logs read -> check.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from tests.chaos import observe
from tests.chaos.checker import check, new, site_dirs
from tests.chaos.history import History, Op, pair_ops
from tests.chaos.invariants import Violation
from tests.chaos.nemesis import Fault, Nemesis, plan
from tests.chaos.replay import collections, replay
from tests.chaos.sites import ChaosSites
from tests.chaos.workload import CLIENT_TIMEOUT_S, World, Worker
from tests.e2e.cluster import PROJECT_ROOT

SETTLE_S = 5.0  # after rounds are over: decisions being resent (resend_max_s is 1 s in tests)


@dataclass(frozen=True)
class RunConfig:
    seed: int
    sites: int = 4
    seconds: float = 120.0
    clients: int = 6
    active_events: int = 0  # events the clients keep in play (0: twice the sites)
    fault_interval: float = 0.8  # mean seconds between fault starts (calm phases aside)
    voting_period_s: float = 4.0
    max_contributors: int = 4  # fewer than the clients: some uploads must get 403
    duplicate_delivery: bool = False  # every site-to-site message sent twice (idempotence)
    strict: bool = False  # violations of known bugs fail the run too
    out: Path | None = None

    def run_dir(self) -> Path:
        if self.out is not None:
            return Path(self.out)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        return PROJECT_ROOT / "test-artifacts" / "chaos" / f"seed-{self.seed}-{stamp}"


@dataclass
class RunResult:
    config: RunConfig
    run_dir: Path
    faults: list[Fault]
    applied: Counter
    crashes_hit: list
    ops: list[Op]
    violations: list[Violation]
    healing: dict
    rounds: Counter = field(default_factory=Counter)
    events: int = 0
    link_stats: Counter = field(default_factory=Counter)
    harness_errors: list[str] = field(default_factory=list)
    site_errors: Counter = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        """No violation but those of known bugs (test_found_bugs.py), no harness error."""
        return not new(self.violations, self.config.strict) and not self.harness_errors


def run(config: RunConfig, make_sites=ChaosSites) -> RunResult:
    """make_sites(run_dir, sites, settings overrides) -> ChaosSites (tests/deploy: on hosts)."""
    run_dir = config.run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    faults = plan(config.seed, config.sites, config.seconds, config.fault_interval)
    observe.save(run_dir, "plan.json", [asdict(f) for f in faults])
    overrides = {"event": {"voting_period_s": config.voting_period_s,
                           "max_contributors": config.max_contributors},
                 "protocol": {"duplicate_delivery": config.duplicate_delivery}}
    sites = make_sites(run_dir, config.sites, overrides)
    stop = threading.Event()
    world = World(target_active=config.active_events or 2 * config.sites)
    history = nemesis = None
    workers: list[Worker] = []
    try:
        sites.start_proxies()
        sites.start_all()
        history = History(run_dir / "history.jsonl")  # its clock starts with the chaos
        workers = [Worker(p, sites.sites, sites.client(CLIENT_TIMEOUT_S), world, history, config.seed, stop)
                   for p in range(config.clients)]
        nemesis = Nemesis(sites, faults, history)
        for worker in workers:
            worker.start()
        nemesis.start()
        stop.wait(config.seconds)
        stop.set()
        nemesis.stop()
        healing = _heal(sites, workers)
        views, digests = _settle_and_read(sites, world, healing)
        link_stats = sites.proxies.stats()
    finally:
        stop.set()
        if nemesis is not None:
            nemesis.stop()
        sites.close()
        if history is not None:
            history.close()
    for name, data in (("healing.json", healing), ("views.json", views), ("digests.json", digests)):
        observe.save(run_dir, name, data)
    logs = observe.read_logs(sites.settings)
    ops = pair_ops(history.records)
    result = RunResult(config, run_dir, faults, nemesis.applied, list(sites.crashes_hit), ops,
                       check(ops, logs, views, digests, healing, site_dirs(sites.settings)), healing,
                       link_stats=link_stats)
    result.harness_errors = nemesis.errors + [f"client {w.process}: {e}" for w in workers for e in w.errors]
    result.harness_errors += [f"client {w.process} still running" for w in workers if w.is_alive()]
    _count_outcomes(result, logs)
    result.site_errors = _site_log_errors(sites)
    observe.save(run_dir, "violations.json", [str(v) for v in result.violations])
    return result


def _heal(sites: ChaosSites, workers: list[Worker]) -> dict:
    """Undo every fault, let the clients finish their last operation; what healing saw."""
    healing: dict = {"heal_started_wall": time.time(), "sites_not_ready": sites.heal()}
    healing["healed_wall"] = time.time()
    for worker in workers:
        worker.join(CLIENT_TIMEOUT_S + 5)
    return healing


def _settle_and_read(sites: ChaosSites, world: World, healing: dict) -> tuple[dict, dict]:
    """Wait until nothing is in doubt and no round runs (each bounded), then a little more for
    resent decisions; then every site's view of every event, and the published montages."""
    observer = observe.observer(sites.url)
    healing.update(observe.wait_nothing_in_doubt(observer, sites.sites, healing["healed_wall"]))
    observe.wait_rounds_over(observer, sites.sites, world.events)
    time.sleep(SETTLE_S)
    healing["final_wall"] = time.time()
    views = observe.read_views(observer, sites.sites, world.events)
    return views, observe.published_digests(observer, sites.sites, views)


def _count_outcomes(result: RunResult, logs: dict) -> None:
    for event_id, by_site in logs.items():
        replayed = {k: replay(event_id, k, entries) for k, entries in by_site.items()}
        result.events += any(log.final.exists for log in replayed.values())
        for _, decided in collections(replayed).values():
            if decided is None:
                result.rounds["undecided"] += 1
            else:
                result.rounds["published" if decided.commit else f"aborted ({decided.reason})"] += 1


def _site_log_errors(sites: ChaosSites) -> Counter:
    found = Counter()
    for k in sites.sites:
        if sites.log_path(k).exists():
            text = sites.log_path(k).read_text(errors="replace")
            found[f"site {k} tracebacks"] += text.count("Traceback (most recent call last)")
            found[f"site {k} ERROR lines"] += sum(" ERROR " in line for line in text.splitlines())
    return +found


def summary(r: RunResult) -> str:
    c = r.config
    planned = Counter(f.kind for f in r.faults)
    ops = Counter((o.f, o.outcome or "incomplete") for o in r.ops)
    by_f = {}
    for (f, outcome), n in sorted(ops.items()):
        by_f.setdefault(f, []).append(f"{outcome} {n}")
    h = r.healing
    lines = [
        f"chaos run: seed {c.seed}, {c.sites} sites, {c.seconds:g} s, {c.clients} clients"
        f"{', duplicate delivery' if c.duplicate_delivery else ''} -> {r.run_dir}",
        f"faults: {sum(r.applied.values())} injected of {len(r.faults)} planned: "
        + ", ".join(f"{k} {r.applied[k]}/{planned[k]}" for k in sorted(planned)),
        f"crash points hit: {len(r.crashes_hit)} " + ", ".join(f"{p}@{s}" for s, p in r.crashes_hit),
        "links: " + ", ".join(f"{k} {v}" for k, v in sorted(r.link_stats.items())),
        f"operations: {len(r.ops)}; " + "; ".join(f"{f}: {', '.join(v)}" for f, v in by_f.items()),
        f"events: {r.events}; rounds: " + ", ".join(f"{k} {v}" for k, v in sorted(r.rounds.items())),
        f"healing: sites ready {h.get('healed_wall', 0) - h.get('heal_started_wall', 0):.1f} s; "
        f"nothing in doubt after {h.get('in_doubt_cleared_after_s')} s; "
        f"views read {h.get('final_wall', 0) - h.get('healed_wall', 0):.1f} s after healing",
        "site logs: " + (", ".join(f"{k} {v}" for k, v in sorted(r.site_errors.items())) or "clean"),
    ]
    lines += [f"HARNESS ERROR: {e}" for e in r.harness_errors]
    lines += [str(v) for v in r.violations]
    if r.violations:
        lines.append(f"an event's merged log: python -m eventstore.audit EVENT_ID --settings "
                     f"{r.run_dir}/settings.toml --data-dir {r.run_dir}/data")
    failing = new(r.violations, c.strict)
    lines.append(f"verdict: {len(failing)} violation(s), {len(r.violations) - len(failing)} of known bugs"
                 + (", harness errors" if r.harness_errors else ""))
    return "\n".join(lines)
