"""A site's figures, fed the records and states its actors produce (no actors, no HTTP)."""

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client import generate_latest

from domain.coordinator import CoordinatorState, fold_all
from domain.messages import AddPhotos, CreateEvent
from domain.records import Acknowledged, Began, Decided
from eventstore.store_trouble import StoreHealth
from web.metrics import Metrics, SiteFigures

SITES = (0, 1, 2)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def stored(metrics, state, *records):
    """What a coordinator actor does after a save: report the records and the state they make."""
    state = fold_all(state, records)
    metrics.on_records("e1", "coordinator", records, state)
    metrics.on_change("e1", "coordinator", state, 0)
    return state


def sample(metrics, name, **labels):
    return metrics.registry.get_sample_value(name, labels)


def test_a_committed_create_is_counted_by_kind_with_its_prepare_to_decision_time():
    clock = Clock()
    metrics = Metrics(clock)
    state = stored(metrics, CoordinatorState("e1"), Began("t1", CreateEvent("Picnic", 0, "now"), SITES))
    clock.now += 0.2
    stored(metrics, state, Decided("t1", True, None))
    assert sample(metrics, "photos_transactions_total", kind="create", outcome="committed", reason="none") == 1
    assert sample(metrics, "photos_transaction_decision_seconds_count", kind="create") == 1
    assert sample(metrics, "photos_transaction_decision_seconds_sum", kind="create") == pytest.approx(0.2)


def test_an_abort_is_counted_with_its_reason():
    metrics = Metrics(Clock())
    state = stored(metrics, CoordinatorState("e1"), Began("t1", AddPhotos(0, ()), SITES))
    stored(metrics, state, Decided("t1", False, "conflict"))
    assert sample(metrics, "photos_transactions_total", kind="upload", outcome="aborted", reason="conflict") == 1
    assert sample(metrics, "photos_transactions_total", kind="upload", outcome="committed", reason="none") is None


def test_a_decision_begun_before_a_restart_is_counted_but_not_timed():
    metrics = Metrics(Clock())
    began = fold_all(CoordinatorState("e1"), [Began("t1", AddPhotos(0, ()), SITES)])
    stored(metrics, began, Decided("t1", False, "unreachable"))
    assert sample(metrics, "photos_transactions_total", kind="upload", outcome="aborted", reason="unreachable") == 1
    assert sample(metrics, "photos_transaction_decision_seconds_count", kind="upload") is None


def test_participant_records_are_not_counted():
    metrics = Metrics(Clock())
    metrics.on_records("e1", "participant", (Decided("t1", True, None),), None)
    assert sample(metrics, "photos_transactions_total", kind="create", outcome="committed", reason="none") is None


def test_a_decision_awaits_acknowledgement_until_every_site_acknowledged():
    metrics = Metrics(Clock())
    state = stored(metrics, CoordinatorState("e1"), Began("t1", CreateEvent("Picnic", 0, "now"), SITES))
    assert metrics.decisions_unacknowledged() == 0  # undecided: in doubt, not awaiting acks
    state = stored(metrics, state, Decided("t1", True, None))
    assert metrics.decisions_unacknowledged() == 1
    stored(metrics, state, Acknowledged("t1", SITES))
    assert metrics.decisions_unacknowledged() == 0


def test_a_coordinator_loaded_at_start_reports_what_still_awaits_acknowledgement():
    metrics = Metrics(Clock())
    state = fold_all(CoordinatorState("e1"), [Began("t1", AddPhotos(0, ()), SITES), Decided("t1", True, None)])
    metrics.on_change("e1", "coordinator", state, 2)
    assert metrics.decisions_unacknowledged() == 1


def test_storage_errors_are_the_count_of_failed_store_calls_the_store_health_kept():
    health = StoreHealth()
    metrics = Metrics(Clock())
    metrics.registry.register(SiteFigures(metrics, lambda: 0, lambda: health.failures))
    health.failed("the disk is full")
    health.failed("the disk is full")
    health.succeeded()
    assert sample(metrics, "photos_storage_errors_total") == 2


def test_the_stores_forced_writes_and_their_records_are_counted():
    metrics = Metrics(Clock())
    metrics.registry.register(SiteFigures(metrics, lambda: 0, lambda: 0, store_writes=lambda: (3, 11)))
    assert sample(metrics, "photos_store_commits_total") == 3
    assert sample(metrics, "photos_store_records_total") == 11


def test_the_scrape_time_gauges_read_what_the_site_knows_and_parse():
    metrics = Metrics(Clock())
    figures = SiteFigures(metrics, lambda: 3, lambda: 0)
    metrics.registry.register(figures)
    figures.peers = {1: True, 2: False}
    metrics.observe_request("GET", "/api/events/{event_id}", 200, 0.01)
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(metrics.registry).decode())}
    assert families["photos_transactions_in_doubt"].samples[0].value == 3
    assert families["photos_decisions_unacknowledged"].samples[0].value == 0
    peers = {s.labels["peer"]: s.value for s in families["photos_peer_reachable"].samples}
    assert peers == {"1": 1, "2": 0}
    latency = families["photos_http_request_duration_seconds"]
    assert {s.labels["route"] for s in latency.samples} == {"/api/events/{event_id}"}


def test_the_collectors_cpu_and_passes_are_counted_by_generation_once_watched():
    import gc

    from web.metrics import COLLECTOR_TIME, watch_collector

    watch_collector()
    watch_collector()  # once per process, however often asked
    assert gc.callbacks.count(COLLECTOR_TIME) == 1
    metrics = Metrics(Clock())
    metrics.registry.register(SiteFigures(metrics, lambda: 0, lambda: 0))

    def by_generation(name):
        families = {f.name: f for f in text_string_to_metric_families(generate_latest(metrics.registry).decode())}
        return {s.labels["generation"]: s.value for s in families[name].samples if s.name == name + "_total"}

    before = by_generation("photos_gc_passes")
    cpu_before = by_generation("photos_gc_cpu_seconds")
    gc.collect(1)
    gc.collect()
    after = by_generation("photos_gc_passes")
    assert set(after) == {"0", "1", "2"}
    assert after["1"] >= before["1"] + 1 and after["2"] >= before["2"] + 1
    assert by_generation("photos_gc_cpu_seconds")["2"] > cpu_before["2"]  # a full pass costs CPU
