"""What one site counts for its operators, in its own Prometheus registry (never the global one).

The figures come from what the actors already produce: the records a coordinator stored
(Began, then Decided: a transaction's kind, outcome and prepare-to-decision time) and the
coordinator states they report (decisions not yet acknowledged by every site). The protocol
code knows nothing of them. Figures the site already holds (transactions in doubt, peers) are
read when scraped, by `SiteFigures`, rather than kept in sync.
"""

from __future__ import annotations

import gc
import threading
import time
from typing import Any, Callable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from domain.coordinator import PREPARING
from domain.messages import AddPhotos, CreateEvent, Publish, StartRound
from domain.records import Began, Decided

KINDS = {CreateEvent: "create", AddPhotos: "upload", StartRound: "start_round", Publish: "publish"}
COORDINATOR = "coordinator"


def kind_of(payload) -> str:
    return KINDS.get(type(payload), "other")


def unacknowledged(state) -> int:
    """Decisions in a coordinator's state that not every site has acknowledged yet."""
    return sum(1 for t in state.txns.values() if t.phase != PREPARING and not set(t.sites) <= t.acks)


class Metrics:
    """One site's counters and histograms. Actors call in from their own threads."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.registry = CollectorRegistry()
        self.clock = clock
        self._lock = threading.Lock()
        self._began: dict[str, float] = {}  # txn -> when its Began was stored here
        self._unacknowledged: dict[str, int] = {}  # event -> decisions awaiting acknowledgements
        self.transactions = Counter(
            "photos_transactions", "Transactions this site coordinated, by kind and outcome "
            "(reason: why an abort happened; 'none' for a commit).",
            ["kind", "outcome", "reason"], registry=self.registry)
        self.decision_seconds = Histogram(
            "photos_transaction_decision_seconds", "From Began stored to Decided stored at this "
            "site's coordinator (prepare round trip included).",
            ["kind"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.request_seconds = Histogram(
            "photos_http_request_duration_seconds", "HTTP requests served by this site, by "
            "method, route template and status.",
            ["method", "route", "status"], registry=self.registry)

    # --- fed by the actors (web.site wires these into actors.role_actor.Wiring) ---------------
    def on_records(self, event_id: str, role: str, records: tuple, state: Any) -> None:
        """Records an actor has just stored, and the state they lead to."""
        if role != COORDINATOR:
            return
        now = self.clock()
        for record in records:
            if isinstance(record, Began):
                with self._lock:
                    self._began[record.txn_id] = now
            elif isinstance(record, Decided):
                self._decided(record, kind_of(state.txns[record.txn_id].payload), now)

    def _decided(self, record: Decided, kind: str, now: float) -> None:
        outcome = "committed" if record.commit else "aborted"
        reason = "none" if record.commit else (record.reason or "unknown")
        self.transactions.labels(kind, outcome, reason).inc()
        with self._lock:
            began = self._began.pop(record.txn_id, None)
        if began is not None:  # None: begun before this process started (a restart aborts it)
            self.decision_seconds.labels(kind).observe(now - began)

    def on_change(self, event_id: str, role: str, state: Any, seq: int) -> None:
        """A role's state, stored or loaded: the coordinator's tells what awaits acknowledgement."""
        if role != COORDINATOR:
            return
        waiting = unacknowledged(state)
        with self._lock:
            if waiting:
                self._unacknowledged[event_id] = waiting
            else:
                self._unacknowledged.pop(event_id, None)

    def decisions_unacknowledged(self) -> int:
        with self._lock:
            return sum(self._unacknowledged.values())

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.request_seconds.labels(method, route, str(status)).observe(seconds)


class CollectorTime:
    """CPU seconds this process's garbage collector spent, and its passes, by generation
    (`gc.callbacks`: a pass runs in one thread, holding the interpreter, from start to stop)."""

    def __init__(self):
        self.seconds = [0.0, 0.0, 0.0]
        self.passes = [0, 0, 0]
        self._started: float | None = None

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.thread_time()
        elif self._started is not None:
            generation = info["generation"]
            self.seconds[generation] += time.thread_time() - self._started
            self.passes[generation] += 1
            self._started = None


COLLECTOR_TIME = CollectorTime()


def watch_collector() -> None:
    """Count the collector's passes from now on (once per process; a site does at start)."""
    if COLLECTOR_TIME not in gc.callbacks:
        gc.callbacks.append(COLLECTOR_TIME)


class SiteFigures(Collector):
    """Gauges read when scraped: what the site already knows, never a copy kept in sync."""

    def __init__(self, metrics: Metrics, in_doubt: Callable[[], int], storage_errors: Callable[[], int],
                 store_writes: Callable[[], tuple[int, int]] = lambda: (0, 0)):
        self.metrics = metrics
        self.in_doubt = in_doubt
        self.storage_errors = storage_errors
        self.store_writes = store_writes  # (database transactions, records) written
        self.peers: dict[int, bool] = {}  # set by the scrape just before it collects

    def collect(self):
        yield GaugeMetricFamily("photos_transactions_in_doubt", "Transactions prepared at this "
                                "site whose outcome it does not know yet.", value=self.in_doubt())
        yield GaugeMetricFamily("photos_decisions_unacknowledged", "Decisions of this site's "
                                "coordinators that not every site has acknowledged yet.",
                                value=self.metrics.decisions_unacknowledged())
        peers = GaugeMetricFamily("photos_peer_reachable", "1 when the peer answered this "
                                  "scrape's ping, else 0.", labels=["peer"])
        for site, ok in sorted(self.peers.items()):
            peers.add_metric([str(site)], 1 if ok else 0)
        yield peers
        yield CounterMetricFamily("photos_storage_errors", "Failed calls into this site's event "
                                  "store and photo files (reads and writes).",
                                  value=self.storage_errors())
        commits, records = self.store_writes()
        yield CounterMetricFamily("photos_store_commits", "Database transactions of new records "
                                  "this site's event store wrote (forced writes).", value=commits)
        yield CounterMetricFamily("photos_store_records", "Records those transactions held (more "
                                  "per transaction: saves grouped into one forced write).", value=records)
        seconds = CounterMetricFamily("photos_gc_cpu_seconds", "CPU seconds this site's process "
                                      "spent in the garbage collector, by generation.",
                                      labels=["generation"])
        passes = CounterMetricFamily("photos_gc_passes", "The garbage collector's passes in this "
                                     "site's process, by generation.", labels=["generation"])
        for generation in range(3):
            seconds.add_metric([str(generation)], COLLECTOR_TIME.seconds[generation])
            passes.add_metric([str(generation)], COLLECTOR_TIME.passes[generation])
        yield seconds
        yield passes
        yield GaugeMetricFamily("photos_gc_frozen_objects", "Objects left out of the garbage "
                                "collector's passes (what the site made at start-up).",
                                value=gc.get_freeze_count())
