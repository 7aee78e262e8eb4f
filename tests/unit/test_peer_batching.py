"""The transport's batching, against fake peers that answer when the test says so: a message
goes at once while fewer than four requests are out; what is sent meanwhile leaves together in
the next request; every message's reply reaches its own sender; a failed request fails each of
its messages, and nothing else."""

from __future__ import annotations

import asyncio
import threading
from collections import deque

import pytest

from actors.role_actor import Failed
from domain.errors import StorageUnavailable
from domain.messages import AddPhotos, Ack, Decision, Outcome, PhotoMeta, Prepare, Query, Unreachable
from web.peers.internal_api import parse_batch, wire_answer
from web.peers.transport import (
    MAX_BATCH_MESSAGES,
    MAX_IN_FLIGHT,
    Outgoing,
    Transport,
    encode_batch,
    take_batch,
)
from web.settings import ProtocolSettings, Settings

HERE = 0


class Request:
    def __init__(self, site: int, batch: list[Outgoing], loop):
        self.site = site
        self.messages = [item.message for item in batch]
        self.done = loop.create_future()

    def answer(self) -> None:
        self.done.set_result([Outcome(m.txn_id, m.event_id, self.site, True) for m in self.messages])

    def fail(self) -> None:
        self.done.set_exception(ConnectionResetError("the peer went away"))


class FakePeers(Transport):
    """A transport whose requests to peers wait until the test answers or fails them."""

    def __init__(self, loop, duplicate_delivery: bool = False):
        settings = Settings(protocol=ProtocolSettings(duplicate_delivery=duplicate_delivery))
        super().__init__(settings, HERE, loop, self.dispatch_here)
        self.requests: list[Request] = []
        self.here: list = []
        self.replies: dict[str, list] = {}

    async def post_batch(self, site: int, batch: list[Outgoing]) -> list:
        request = Request(site, batch, self.loop)
        self.requests.append(request)
        return await request.done

    async def dispatch_here(self, message):
        self.here.append(message)
        return Outcome(message.txn_id, message.event_id, HERE, False)

    def send_query(self, site: int, txn_id: str) -> None:
        self.send(site, Query(txn_id, "event", HERE, HERE), self.replies.setdefault(txn_id, []).append)

    def sizes(self) -> list[int]:
        return [len(r.messages) for r in self.requests]


@pytest.fixture
async def peers():
    return FakePeers(asyncio.get_running_loop())


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def until(condition) -> None:
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("the condition never held")


def txn_ids(request: Request) -> list[str]:
    return [m.txn_id for m in request.messages]


async def fill(peers: FakePeers, site: int = 1) -> None:
    for n in range(MAX_IN_FLIGHT):
        peers.send_query(site, f"alone-{n}")
        await settle()


async def test_a_message_goes_at_once_in_a_request_of_its_own_while_fewer_than_four_are_in_flight(peers):
    await fill(peers)
    assert peers.sizes() == [1] * MAX_IN_FLIGHT


async def test_messages_sent_while_four_requests_are_in_flight_leave_together_when_one_completes(peers):
    await fill(peers)
    for n in range(5):
        peers.send_query(1, f"waiting-{n}")
    await settle()
    assert peers.sizes() == [1] * MAX_IN_FLIGHT  # nothing more is sent yet
    peers.requests[2].answer()
    await settle()
    assert peers.sizes() == [1] * MAX_IN_FLIGHT + [5]
    assert txn_ids(peers.requests[-1]) == [f"waiting-{n}" for n in range(5)]


async def test_each_message_of_a_batch_gets_its_own_reply(peers):
    await fill(peers)
    for n in range(3):
        peers.send_query(1, f"waiting-{n}")
    peers.requests[0].answer()
    await settle()
    peers.requests[-1].answer()
    await settle()
    for txn_id in ("alone-0", "waiting-0", "waiting-1", "waiting-2"):
        assert [(r.txn_id, r.site, r.commit) for r in peers.replies[txn_id]] == [(txn_id, 1, True)]
    assert peers.replies["alone-1"] == []  # still in flight


async def test_a_failed_request_gives_unreachable_to_each_of_its_messages_and_to_no_other(peers):
    await fill(peers)
    for n in range(3):
        peers.send_query(1, f"waiting-{n}")
    peers.requests[0].answer()
    await settle()
    peers.requests[-1].fail()
    peers.requests[1].answer()
    await settle()
    for n in range(3):
        [reply] = peers.replies[f"waiting-{n}"]
        assert reply == Unreachable(1, Query(f"waiting-{n}", "event", HERE, HERE))
    assert all(isinstance(peers.replies[f"alone-{n}"][0], Outcome) for n in (0, 1))


async def test_requests_to_one_peer_do_not_hold_up_messages_to_another(peers):
    await fill(peers, site=1)
    peers.send_query(2, "elsewhere")
    await settle()
    assert [(r.site, len(r.messages)) for r in peers.requests[-1:]] == [(2, 1)]


async def test_messages_to_this_site_are_handled_in_process_and_never_batched(peers):
    await fill(peers)
    for n in range(3):
        peers.send_query(HERE, f"here-{n}")
    await until(lambda: len(peers.replies["here-2"]) == 1)
    assert [m.txn_id for m in peers.here] == ["here-0", "here-1", "here-2"]
    assert all(r.site == 1 for r in peers.requests)


async def test_a_message_to_this_site_that_the_site_takes_on_its_hot_path_skips_the_loop(peers):
    """SiteService.hand_over takes a decision (or a prepare naming no photos) straight to the
    actor: the answer reaches the sender from the actor's thread; a failure is Unreachable, as
    a failed dispatch is; no answer is nothing."""
    handed = []
    peers.hand_over = lambda message, answered: isinstance(message, Decision) and not handed.append(answered)
    replies = {txn: [] for txn in ("d-ack", "d-failed", "d-none")}
    for txn in replies:
        peers.send(HERE, Decision(txn, "event", True), replies[txn].append)
    peers.send_query(HERE, "q-dispatched")  # not taken by hand_over: dispatched on the loop
    await until(lambda: len(peers.replies.get("q-dispatched", [])) == 1)
    assert [m.txn_id for m in peers.here] == ["q-dispatched"] and len(handed) == 3
    answers = [Ack("d-ack", "event", HERE), Failed(StorageUnavailable("disk full")), None]
    threads = [threading.Thread(target=answered, args=(answer,)) for answered, answer in zip(handed, answers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert replies["d-ack"] == [Ack("d-ack", "event", HERE)]
    [unreachable] = replies["d-failed"]
    assert isinstance(unreachable, Unreachable) and unreachable.site == HERE
    assert unreachable.request.txn_id == "d-failed"
    assert replies["d-none"] == []


def test_an_answer_on_the_hot_path_is_the_entry_a_dispatched_one_would_be():
    assert wire_answer(None) is None
    assert wire_answer(Ack("t", "e", 2)) == {"type": "Ack", "txn_id": "t", "event_id": "e", "site": 2}
    assert wire_answer(Failed(StorageUnavailable("disk full")))["error"] == "storage_unavailable"
    assert wire_answer(Failed(StorageUnavailable("disk full"), after_stored=True))["error"] == "outcome_unknown"
    assert wire_answer(Failed(RuntimeError("bug")))["error"] == "site_unreachable"


async def test_messages_sent_from_actor_threads_reach_the_peer():
    peers = FakePeers(asyncio.get_running_loop())
    threads = [threading.Thread(target=peers.send_query, args=(1, f"thread-{n}")) for n in range(20)]
    for thread in threads:
        thread.start()
    await until(lambda: sum(peers.sizes()) == min(20, MAX_IN_FLIGHT))
    while sum(peers.sizes()) < 20:
        for request in peers.requests:
            if not request.done.done():
                request.answer()
        await settle()
    assert sorted(m.txn_id for r in peers.requests for m in r.messages) == sorted(f"thread-{n}" for n in range(20))
    assert len(peers.requests) < 20  # some of them shared a request


async def test_duplicate_delivery_sends_every_message_twice():
    peers = FakePeers(asyncio.get_running_loop(), duplicate_delivery=True)
    peers.send_query(1, "twice")
    await settle()
    assert [txn_ids(r) for r in peers.requests] == [["twice"], ["twice"]]


async def test_an_upload_prepare_goes_as_metadata_alone(peers):
    photo = PhotoMeta("p1", "a" * 64, "b" * 64, "someone", HERE)
    prepare = Prepare("up-1", "event", HERE, AddPhotos(0, (photo,)))
    peers.send(1, prepare, peers.replies.setdefault("up-1", []).append)
    await until(lambda: peers.requests)
    assert peers.requests[0].messages == [prepare]
    assert parse_batch(encode_batch([Outgoing(prepare, None)])) == [prepare]
    assert len(encode_batch([Outgoing(prepare, None)])) < 1024  # no photo bytes


def waiting(count: int) -> deque[Outgoing]:
    return deque(Outgoing(Query(f"t{n}", "e", 0, 0), None) for n in range(count))


@pytest.mark.parametrize("count, taken", [
    (1, 1),
    (3, 3),
    (MAX_BATCH_MESSAGES + 5, MAX_BATCH_MESSAGES),
])
def test_a_batch_takes_the_oldest_messages_within_its_limits(count, taken):
    queue = waiting(count)
    batch = take_batch(queue)
    assert [item.message.txn_id for item in batch] == [f"t{n}" for n in range(taken)]
    assert len(queue) == count - taken
