"""A pooled actor is a pykka actor: what pykka.Actor.__init__ sets, it sets too (more cheaply),
and pykka's registry, refs and stop see it as one of their own (actors.pool.PooledActor)."""

from __future__ import annotations

import threading

import pykka

from actors.pool import ActorPool, PooledActor


class Echo(PooledActor):
    def on_receive(self, message):
        return message


def test_a_pooled_actor_has_every_field_pykka_gives_an_actor():
    pool = ActorPool(1)
    plain = pykka.ThreadingActor()  # not started: its __init__ alone
    pooled = Echo(pool)
    assert set(vars(plain)) <= set(vars(pooled))
    assert isinstance(pooled.actor_ref, pykka.ActorRef) and pooled.actor_ref.actor_urn == pooled.actor_urn
    pool.shutdown()


def test_pooled_actors_have_unique_urns_and_are_found_by_them_while_they_run():
    pool = ActorPool(2)
    refs = [Echo.start(pool) for _ in range(50)]
    assert len({ref.actor_urn for ref in refs}) == 50
    assert all(ref.actor_urn.startswith("urn:uuid:") for ref in refs)
    assert pykka.ActorRegistry.get_by_urn(refs[7].actor_urn) is refs[7]
    assert refs[3].ask("hello", timeout=5) == "hello"
    for ref in refs:
        ref.stop(timeout=5)
    assert not any(ref.is_alive() for ref in refs)
    assert pykka.ActorRegistry.get_by_urn(refs[7].actor_urn) is None
    pool.shutdown()


def test_waiting_for_an_actor_to_stop_ends_when_it_stops_whether_it_waited_before_or_after():
    pool = ActorPool(1)
    early, late = Echo.start(pool), Echo.start(pool)
    stopped_early = []
    waiter = threading.Thread(target=lambda: stopped_early.append(early.actor_stopped.wait(5)))
    waiter.start()
    assert not early.actor_stopped.wait(0.01)  # running: a wait with a timeout ends unstopped
    early.stop(timeout=5)
    late.stop(timeout=5)
    waiter.join(5)
    assert stopped_early == [True]
    assert late.actor_stopped.wait(0) is True and late.actor_stopped.is_set()
    pool.shutdown()
