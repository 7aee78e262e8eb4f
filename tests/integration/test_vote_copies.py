"""One real site in-process: a copy of a forwarded vote (the same person and time, sent again
after its answer was lost) gets the answer the vote had, even once the round it opened has
ended; it never starts a round of its own, nor is it refused as if it had not been recorded."""

from __future__ import annotations

import asyncio
import time

from domain.messages import ACCEPT, REJECT
from eventstore.imaging import normalize_upload
from tests.images import jpeg_bytes


async def test_a_copy_of_the_accept_that_opened_a_round_that_ended_gets_its_answer_again(site):
    event_id = await site.create_event("Picnic")
    for n, user in enumerate(("ann", "bob")):
        photo = normalize_upload(jpeg_bytes(64, 48, color=(60 * n, 90, 200)), max_pixels=10_000_000)
        await site.uploads.add_photos(event_id, user, [photo])
    state = await site.event_state(event_id)
    at = time.time()

    opened = await site.voting._vote_here(state, "ann", state.version, ACCEPT, at)
    await site.voting.vote(event_id, "bob", state.version, REJECT)  # the round ends: rejected
    deadline = time.monotonic() + 20
    while (state := await site.event_state(event_id)).round is not None or state.rounds != 1:
        assert time.monotonic() < deadline, "round 1 never ended"
        await asyncio.sleep(0.05)

    again = await site.voting._vote_here(state, "ann", state.version, ACCEPT, at)  # the copy

    assert (again.round, again.deadline) == (opened.round, opened.deadline) == (1, opened.deadline)
    state = await site.event_state(event_id)
    assert state.rounds == 1 and state.round is None  # no round of its own
