"""The image routes of one real site in-process: both montage renditions, and every refusal in
the API's JSON error shape (API.md, Images)."""

import asyncio
import uuid
from io import BytesIO

import aiohttp
from PIL import Image

from tests.images import photo_jpeg


async def new_event_with_photos(client, count: int = 2) -> tuple[str, list[str]]:
    resp = await client.post("/api/events", json={"title": "Fête d'été 2024"})
    assert resp.status == 201
    event_id = (await resp.json())["event_id"]
    form = aiohttp.FormData()
    for n in range(count):
        size = (2000, 1500) if n % 2 == 0 else (1500, 2000)
        form.add_field("photo", photo_jpeg(*size, seed=n), filename=f"p{n}.jpg", content_type="image/jpeg")
    resp = await client.post(f"/api/events/{event_id}/photos", data=form)
    assert resp.status == 201, await resp.text()
    body = await (await client.get(f"/api/events/{event_id}")).json()
    return event_id, [p["photo_id"] for p in body["photos"]]


async def json_error(client, path: str) -> tuple[int, str]:
    resp = await client.get(path)
    assert resp.content_type == "application/json", (path, resp.status)
    return resp.status, (await resp.json())["error"]


def size_of(data: bytes) -> tuple[int, int]:
    return Image.open(BytesIO(data)).size


async def as_stranger(client) -> None:
    client.session.cookie_jar.clear()  # a new identity cookie comes with the next answer


async def test_a_submitter_gets_the_full_keepsake_by_default_and_the_screen_rendition_on_asking(client):
    event_id, _ = await new_event_with_photos(client)

    full = await client.get(f"/events/{event_id}/montage.jpg")
    screen = await client.get(f"/events/{event_id}/montage.jpg?v=2&size=screen")
    explicit = await client.get(f"/events/{event_id}/montage.jpg?size=full&v=2")

    assert full.status == screen.status == explicit.status == 200
    assert full.content_type == screen.content_type == "image/jpeg"
    full_bytes, screen_bytes = await full.read(), await screen.read()
    assert await explicit.read() == full_bytes
    assert max(size_of(screen_bytes)) <= 1600
    assert max(size_of(full_bytes)) >= 3000  # two full-size photos allow a 3000 px keepsake


async def test_an_unknown_event_is_404_unknown_event_on_every_image_route(client):
    missing = uuid.uuid4()
    for path in (f"/events/{missing}/montage.jpg", f"/events/{missing}/photos/x.jpg",
                 f"/public/{missing}/montage.jpg", "/public/not-an-id/montage.jpg"):
        assert await json_error(client, path) == (404, "unknown_event"), path


async def test_a_missing_version_or_photo_is_404_and_a_bad_size_is_400(client):
    event_id, _ = await new_event_with_photos(client)
    for v in ("0", "3", "abc", "-1"):
        assert await json_error(client, f"/events/{event_id}/montage.jpg?v={v}") == (404, "no_montage"), v
    assert await json_error(client, f"/events/{event_id}/photos/no-such-photo.jpg") == (404, "unknown_event")
    for size in ("huge", "", "SCREEN"):
        assert await json_error(client, f"/events/{event_id}/montage.jpg?size={size}") == (400, "invalid_request")


async def test_before_publication_a_stranger_gets_403_and_the_public_montage_is_404(client):
    event_id, photo_ids = await new_event_with_photos(client)
    assert await json_error(client, f"/public/{event_id}/montage.jpg") == (404, "not_published")

    await as_stranger(client)
    for path in (f"/events/{event_id}/montage.jpg", f"/events/{event_id}/montage.jpg?size=screen",
                 f"/events/{event_id}/photos/{photo_ids[0]}.jpg"):
        assert await json_error(client, path) == (403, "not_submitter"), path
    assert await json_error(client, f"/public/{event_id}/montage.jpg?size=screen") == (404, "not_published")


async def published(client, event_id: str) -> None:
    resp = await client.post(f"/api/events/{event_id}/votes", json={"montage_version": 2, "decision": "accept"})
    assert resp.status == 200, await resp.text()
    for _ in range(200):
        if (await (await client.get(f"/api/events/{event_id}")).json())["state"] == "published":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the event was not published")


async def test_once_published_anyone_gets_both_renditions_and_the_page_offers_them(client):
    event_id, _ = await new_event_with_photos(client)
    submitters_full = await (await client.get(f"/events/{event_id}/montage.jpg?v=2")).read()
    await published(client, event_id)
    await as_stranger(client)

    full = await client.get(f"/public/{event_id}/montage.jpg")
    screen = await client.get(f"/public/{event_id}/montage.jpg?size=screen")
    assert full.status == screen.status == 200
    assert await full.read() == submitters_full
    screen_size, full_size = size_of(await screen.read()), size_of(submitters_full)
    assert await json_error(client, f"/public/{event_id}/montage.jpg?size=tiny") == (400, "invalid_request")

    page = await (await client.get(f"/public/{event_id}")).text()
    assert (f'srcset="/public/{event_id}/montage.jpg?size=screen {screen_size[0]}w, '
            f'/public/{event_id}/montage.jpg {full_size[0]}w"') in page
    assert f'width="{screen_size[0]}" height="{screen_size[1]}"' in page
    assert f'href="/public/{event_id}/montage.jpg" download="fete-d-ete-2024-keepsake.jpg"' in page
