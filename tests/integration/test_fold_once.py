"""Each record folded once: an aggregate takes the state its step computed, and what it stores
replays to that very state.

The seeded protocol and round simulations (tests/unit) are run with every role's records also
taken by a real aggregate and saved in a real store, as the actors do it, with snapshots every
few records; a crash reloads the aggregates from the store. Wherever the simulation's own state
stands, the aggregate in memory, the store's rebuild (snapshot + tail) and a replay of the whole
log must agree with it.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import replace

import pytest

from domain import coordinator
from domain.aggregates import Coordination, PhotoEvent
from domain.coordinator import CoordinatorState, Txn
from domain.event_state import EventState
from domain.event_state import fold_all as fold_participant
from domain.messages import CreateEvent
from domain.records import Began
from eventstore import store as store_module
from eventstore.store import SiteStore
from tests.unit import test_protocol_simulation as protocol_sim
from tests.unit import test_round_simulation as round_sim
from tests.unit.simulated_network import durable

SNAPSHOT_EVERY = 4  # small, so that runs rebuild from snapshots


class StoredRoles:
    """Mixed into a simulation's Cluster: each site's roles keep a real aggregate in a real
    store beside the simulation's state, and take each step's records and state as the actors
    do (RoleActor._step)."""

    root = None  # set by the test: where each cluster's stores go
    _clusters = itertools.count()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        folder = self.root / f"cluster-{next(self._clusters)}"
        self.stores = {s: SiteStore("sqlite", folder / f"site-{s}") for s in self.sites}
        self.events = {s: None for s in self.sites}
        self.coordinations = {s: None for s in self.sites}
        self.stored_records = {s: len(site.participant_log) for s, site in self.sites.items()}
        self.coordinator_step = self._stored_step(self.coordinator_step)
        for site_id, site in self.sites.items():  # what a simulation starts from, as tools store it
            self._record_all(site_id, PhotoEvent, self.events, site.participant_log)
            self._record_all(site_id, Coordination, self.coordinations, site.coordinator_log)

    def _record_all(self, site_id, cls, aggregates, records) -> None:
        if records:
            aggregate = cls(event_id=self.event)
            for record in records:
                aggregate.record(record)
            self.stores[site_id].save(aggregate)
            aggregates[site_id] = aggregate

    def _participant_stepped(self, site_id: int) -> None:
        super()._participant_stepped(site_id)
        site = self.sites[site_id]
        records = site.participant_log[self.stored_records[site_id]:]
        self.stored_records[site_id] = len(site.participant_log)
        if records:
            aggregate = self.events[site_id] or PhotoEvent(event_id=self.event)
            aggregate.take(tuple(records), site.participant)
            self.stores[site_id].save(aggregate)
            self.events[site_id] = aggregate
            assert aggregate.state == site.participant

    def _stored_step(self, step):
        def stored_step(state, message, config, now):
            result = step(state, message, config, now)
            if result.records:
                site_id = config.site
                aggregate = self.coordinations[site_id] or Coordination(event_id=self.event)
                aggregate.take(result.records, result.state)
                self.stores[site_id].save(aggregate)
                self.coordinations[site_id] = aggregate
                assert aggregate.state == durable(result.state)  # never what only memory holds
            return result

        return stored_step

    def crash(self, site_id: int, keep_timers: bool, keep_mail: bool) -> None:
        """The actors' memory is lost too: both aggregates are read back from the store."""
        store, site = self.stores[site_id], self.sites[site_id]
        self.events[site_id] = store.load_event(self.event)
        self.coordinations[site_id] = store.load_coordination(self.event)
        self._check_stored(site_id, fold_participant(EventState(self.event), site.participant_log),
                           coordinator.fold_all(CoordinatorState(self.event), site.coordinator_log))
        super().crash(site_id, keep_timers, keep_mail)

    def check_stored(self) -> None:
        for site_id, site in self.sites.items():
            self._check_stored(site_id, site.participant, durable(site.coordinator))

    def _check_stored(self, site_id: int, participant, stored_coordinator) -> None:
        store, site = self.stores[site_id], self.sites[site_id]
        for aggregate, state, log in (
            (self.events[site_id], participant, site.participant_log),
            (self.coordinations[site_id], stored_coordinator, site.coordinator_log),
        ):
            if aggregate is None:
                assert not log
                continue
            loaded, replayed = store._get(aggregate.id), store._replay(aggregate.id)
            assert aggregate.state == loaded.state == replayed.state == state
            assert aggregate.version == loaded.version == replayed.version == len(log) + 1
            assert not aggregate.pending_events

    def close(self) -> None:
        for store in self.stores.values():
            store.close()


@pytest.fixture
def simulations(tmp_path, monkeypatch):
    """The two simulations' Clusters with stored roles, on an event id the store takes."""
    monkeypatch.setattr(store_module, "SNAPSHOT_EVERY", SNAPSHOT_EVERY)
    made = []
    for module in (protocol_sim, round_sim):
        monkeypatch.setattr(module, "EVENT", str(uuid.uuid4()))

        class Stored(StoredRoles, module.Cluster):
            root = tmp_path

            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                made.append(self)

        monkeypatch.setattr(module, "Cluster", Stored)
    yield made
    for cluster in made:
        cluster.close()


@pytest.mark.parametrize("seed", range(6))
def test_stepped_state_is_what_the_store_replays_in_random_protocol_runs(simulations, seed):
    cluster = protocol_sim.random_run(seed)

    cluster.check_stored()
    records = sum(len(s.participant_log) + len(s.coordinator_log) for s in cluster.sites.values())
    assert records > 2 * SNAPSHOT_EVERY  # long enough for snapshots to be taken and read


def test_stepped_state_is_what_the_store_replays_in_random_voting_rounds(simulations):
    votes = 0
    for seed in range(6):
        cluster = round_sim.random_run(seed)

        cluster.check_stored()
        votes += sum(type(r).__name__ == "VoteCast" for s in cluster.sites.values() for r in s.participant_log)
    assert votes  # rounds ran: votes, reports and collections were stored


def test_a_coordination_never_takes_what_only_its_memory_holds(tmp_path):
    """A coordinator's step state holds yes votes and acknowledgements heard; the aggregate's
    stored state (and so its snapshots) must not."""
    event_id = str(uuid.uuid4())
    began = Began("0-t1", CreateEvent("P", 0, "now"), (0, 1))
    heard = CoordinatorState(event_id).with_txn("0-t1", Txn(event_id, began.payload, began.sites,
                                                            yes=frozenset({0}), answered=True))
    aggregate = Coordination(event_id=event_id)

    aggregate.take((began,), heard)

    assert aggregate.state == durable(heard) != heard
    assert aggregate.state.txns["0-t1"] == replace(heard.txns["0-t1"], yes=frozenset(), answered=False)
