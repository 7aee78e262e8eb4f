"""Four sites on four hosts, each on its own PostgreSQL: what a deployment on real machines does
(tests/deploy/conftest.py makes the hosts; one test after another on the same deployment)."""

from __future__ import annotations

import io
import random
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from tests.e2e.cluster import wait_until
from tests.e2e.helpers import create_event, nothing_in_doubt, photo, wait_same_photos

pytestmark = pytest.mark.deploy


def phone_photos(count: int) -> list[bytes]:
    """Distinct 4000x3000 JPEGs of a phone's size (~6 MB), whose detail survives the halving a
    site stores (~1.6 MB each after normalising, as real photos keep theirs): a base with noise
    at half resolution, and a noise patch each (making the base is what costs)."""
    ramp = Image.linear_gradient("L").resize((4000, 3000))
    noise = Image.effect_noise((2000, 1500), 40).resize((4000, 3000), Image.Resampling.NEAREST)
    base = Image.merge("RGB", [Image.blend(ramp, noise, 0.5),
                               Image.blend(ramp.transpose(Image.Transpose.FLIP_LEFT_RIGHT), noise, 0.4),
                               noise])
    rng = random.Random(5)
    out = []
    for _ in range(count):
        image = base.copy()
        image.paste(Image.effect_noise((240, 180), 60).convert("RGB"),
                    (rng.randrange(3700), rng.randrange(2800)))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=92)
        out.append(buffer.getvalue())
    return out


def timed(call, *args):
    started = time.monotonic()
    result = call(*args)
    return (*result, time.monotonic() - started)


def versions(client, deployment, event_id: str) -> dict[int, int]:
    return {k: client.get_json(k, f"/api/events/{event_id}")[1].get("montage_version")
            for k in deployment.sites}


def test_an_event_made_on_one_host_and_a_photo_added_on_another_are_on_every_host(deployment):
    assert all(deployment.url(k).startswith("https://") for k in deployment.sites)  # TLS between
    alice = deployment.client()
    event_id = create_event(alice, site=0)
    for k in deployment.sites:
        status, view = alice.get_json(k, f"/api/events/{event_id}")
        assert status == 200 and view["site"] == k and view["home_site"] == 0, view
    status, body = alice.upload(2, event_id, [photo(1)])
    assert status == 201, body
    assert set(versions(alice, deployment, event_id).values()) == {1}
    for k in deployment.sites:
        status, answer = alice.get_json(k, "/api/status")
        assert all(peer["reachable"] for peer in answer["peers"]), (k, answer)


def test_phone_photos_uploaded_at_once_while_one_link_is_throttled_reach_every_host(deployment):
    """Four phone-sized originals at host 1 while host 3's link runs at 10 Mbit/s; meanwhile
    another guest adds a small photo to the same event at host 2."""
    alice, bob = deployment.client(), deployment.client()
    event_id = create_event(alice, site=0)
    phones = [(f"phone-{n}.jpg", data, "image/jpeg") for n, data in enumerate(phone_photos(4))]
    assert all(len(data) > 4_000_000 for _, data, _ in phones)
    deployment.hosts.throttle(3, "10mbit")
    try:
        with ThreadPoolExecutor(2) as pool:
            big = pool.submit(alice.upload, 1, event_id, phones)
            small = pool.submit(timed, bob.upload, 2, event_id, [photo(7)])
            (status, body), (small_status, small_body, small_s) = big.result(), small.result()
    finally:
        deployment.hosts.mend(3)
    assert status == 201, body
    assert small_status == 201, small_body
    print(f"the small upload beside them took {small_s:.2f} s")
    views = wait_same_photos(alice, deployment, event_id, 5, timeout=60)
    assert {p["sha256"] for p in body["photos"]} <= {p["sha256"] for p in views[3]["photos"]}


def test_a_round_across_hosts_publishes_everywhere_though_the_home_host_was_killed(deployment):
    alice, bob = deployment.client(), deployment.client()
    event_id = create_event(alice, site=0)
    for person, k in ((alice, 1), (bob, 2)):
        status, body = person.upload(k, event_id, [photo(10 + k)])
        assert status == 201, body
    wait_same_photos(alice, deployment, event_id, 2)
    status, body = alice.post_json(1, f"/api/events/{event_id}/votes",
                                   {"montage_version": 2, "decision": "accept"})
    assert status == 200, body
    deployment.kill(0)  # the home host's site dies: the vote below cannot be reported to it
    status, body = bob.post_json(2, f"/api/events/{event_id}/votes",
                                 {"montage_version": 2, "decision": "accept"})
    assert status == 200, body
    deployment.start(0)
    deployment.wait_ready(0, timeout=60)

    def published_everywhere():
        return all(bob.get_json(k, f"/api/events/{event_id}")[1]["published_version"] == 2
                   for k in deployment.sites)

    wait_until(published_everywhere, 60, message="published on every host")
    wait_until(lambda: nothing_in_doubt(alice, deployment), 30, message="nothing in doubt")
