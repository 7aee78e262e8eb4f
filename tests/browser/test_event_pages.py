"""The event pages in a real browser: two people on two sites, live updates, votes, bad files,
a phone-sized screen and a forged form. Every wait is on a condition (Playwright's expect)."""

from __future__ import annotations

import re
from io import BytesIO
from urllib.parse import urlsplit

import pillow_heif
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.images import jpeg_bytes

pytestmark = pytest.mark.browser


def jpeg(name: str, seed: int) -> dict:
    colour = (seed * 67 % 256, seed * 31 % 256, seed * 97 % 256)
    return {"name": name, "mimeType": "image/jpeg", "buffer": jpeg_bytes(480, 360, color=colour)}


def open_event_live(page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#live-status")).to_have_text(re.compile("^Live"))


def create_by_api(page, base: str, title: str) -> str:
    response = page.request.post(f"{base}/api/events", data={"title": title})
    assert response.status == 201, response.text()
    return response.json()["url"]


def upload_by_api(page, base: str, event_path: str, seed: int) -> None:
    response = page.request.post(f"{base}/api{event_path}/photos", multipart={"photo": jpeg(f"p{seed}.jpg", seed)})
    assert response.status == 201, response.text()


def user_id(page, base: str) -> str:
    return page.request.get(f"{base}/api/me").json()["user_id"]


def test_two_people_on_two_sites_share_upload_accept_and_publish_without_reloading(cluster, person, shot):
    alice, bob = person(), person()
    alice.goto(cluster.url(0) + "/")
    alice.get_by_label("Event title").fill("Beach day <b>at</b> noon")
    alice.get_by_role("button", name="Create event").click()
    link = alice.locator("#created-link")
    expect(link).to_have_value(re.compile(r"/events/[0-9a-f-]{36}$"))
    expect(alice.get_by_role("button", name="Copy link").first).to_be_visible()
    expect(alice.locator("#my-events")).to_contain_text("Beach day <b>at</b> noon")
    shot(alice, "home-created")
    event_path = urlsplit(link.input_value()).path

    alice.get_by_role("link", name="Open the event").click()
    expect(alice.locator("h1")).to_have_text("Beach day <b>at</b> noon")  # escaped, not markup
    expect(alice.locator("#live-status")).to_have_text(re.compile("^Live"))
    open_event_live(bob, cluster.url(1) + event_path)
    bob.get_by_label("Your name").fill("Bob")
    bob.get_by_role("button", name="Save name").click()
    expect(bob.locator(".name-form .form-status")).to_contain_text("Bob")

    alice.locator("#photo-input").set_input_files([jpeg("alice.jpg", 1)])
    expect(alice.locator("#queue li.done")).to_have_count(1)
    expect(bob.locator("[data-part=montage]")).to_contain_text("1 photo from 1 person so far")
    bob.locator("#photo-input").set_input_files([jpeg("bob-1.jpg", 2), jpeg("bob-2.jpg", 3)])
    expect(bob.locator("#queue li.done")).to_have_count(2)

    # Each sees the other's photos and the new montage, live.
    for page in (alice, bob):
        expect(page.locator("[data-part=photos] img")).to_have_count(3)
        expect(page.locator("[data-part=montage] img")).to_have_attribute("data-version", "3")
    expect(alice.locator("[data-part=photos]")).to_contain_text("by Bob")
    expect(bob.locator("[data-part=photos]")).to_contain_text("by Bob (you)")
    shot(alice, "alice-three-photos")

    alice.get_by_role("button", name="Accept version 3").click()
    expect(alice.locator("[data-part=vote]")).to_contain_text("You accepted version 3")
    expect(bob.locator("[data-part=banner]")).to_contain_text("Voting on version 3")
    expect(bob.locator("#photo-input")).to_be_disabled()
    expect(bob.locator("#upload-why")).to_contain_text("Uploads are paused")
    bob.get_by_role("button", name="Accept version 3").click()

    for page in (alice, bob):
        expect(page.locator("[data-part=banner]")).to_contain_text("Published", timeout=20_000)
        expect(page.locator("[data-part=banner] a")).to_have_attribute("href", f"/public/{event_path.split('/')[-1]}")
    shot(bob, "bob-published")

    public = person()
    public.goto(cluster.url(2) + event_path.replace("/events/", "/public/"))
    expect(public.locator("h1")).to_have_text("Beach day <b>at</b> noon")
    montage = public.locator(".public-montage img")
    expect(montage).to_be_visible()
    assert public.evaluate("document.querySelector('.public-montage img').naturalWidth") > 0
    expect(public.get_by_role("link", name="Download the montage")).to_have_attribute("download", "beach-day-b-at-b-noon-keepsake.jpg")
    expect(public.locator("#public-link")).to_have_value(re.compile("/public/"))
    html = public.content()
    for someone in (alice, bob):
        assert user_id(someone, cluster.url(0)) not in html
    shot(public, "public")

    audit = person()
    audit.goto(cluster.url(2) + event_path + "/audit")
    headings = audit.locator(".change h3")
    for step in ("Create the event", "Add 1 photo by guest", "Add 1 photo by Bob", "Start vote round 1",
                 "The votes of round 1", "Collect the votes of round 1"):
        expect(headings.filter(has_text=step).first).to_be_visible()
    assert audit.locator("svg.sequence").count() >= headings.count() >= 7
    expect(audit.locator("table.timeline")).to_contain_text("Bob")
    shot(audit, "audit")


def test_a_reject_aborts_the_round_on_both_pages_and_uploads_come_back(cluster, person, shot):
    alice, bob = person(), person()
    event_path = create_by_api(alice, cluster.url(0), "Rejected picnic")
    upload_by_api(alice, cluster.url(0), event_path, 4)
    upload_by_api(bob, cluster.url(2), event_path, 5)
    open_event_live(alice, cluster.url(0) + event_path)
    open_event_live(bob, cluster.url(2) + event_path)

    alice.get_by_role("button", name="Accept version 2").click()
    countdown = bob.locator(".countdown-time")
    expect(countdown).to_be_visible()
    first = countdown.inner_text()
    expect(countdown).not_to_have_text(first, timeout=3_000)
    assert seconds(countdown.inner_text()) < seconds(first) <= 20
    # The accept that opened the round came with it: every site counts it.
    for page in (alice, bob):
        expect(page.locator("[data-part=vote]")).to_contain_text("1 of 2 accepted")
    expect(bob.locator("#dropzone")).to_be_visible()
    expect(bob.locator("#photo-input")).to_be_disabled()
    shot(bob, "voting")

    bob.get_by_role("button", name="Reject", exact=True).click()
    bob.get_by_role("button", name="Yes, reject it").click()  # a reject asks first
    for page in (alice, bob):
        expect(page.locator("[data-part=outcome]")).to_contain_text(
            "Round 1 was aborted: someone rejected the montage")
        expect(page.locator("[data-part=banner]")).to_contain_text("Open for photos")
        expect(page.locator("#photo-input")).to_be_enabled()
        expect(page.locator("#upload-why")).to_be_hidden()
    shot(alice, "aborted")


def seconds(clock: str) -> int:
    minutes, secs = clock.split(":")
    return int(minutes) * 60 + int(secs)


def test_an_oversized_a_broken_and_a_non_image_file_each_get_a_sentence(cluster, person, shot):
    page = person()
    event_path = create_by_api(page, cluster.url(1), "Bad files")
    open_event_live(page, cluster.url(1) + event_path)
    page.locator("#photo-input").set_input_files([
        {"name": "huge.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8" + b"x" * (1024 * 1024 + 10)},
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a photo at all"},
        {"name": "broken.jpg", "mimeType": "image/jpeg", "buffer": jpeg_bytes(200, 200)[:300]},
    ])
    failed = page.locator("#queue li.failed")
    expect(failed).to_have_count(3)
    expect(failed.nth(0)).to_contain_text("huge.jpg Not added: This photo is larger than 1 MB")
    expect(failed.nth(1)).to_contain_text("notes.txt Not added: This file isn't a photo the event can take")
    expect(failed.nth(2)).to_contain_text("broken.jpg Not added: This photo couldn't be opened")
    queue = page.locator("#queue").inner_text()
    assert "Traceback" not in queue and "internal" not in queue
    expect(page.locator("[data-part=photos]")).to_contain_text("No photos yet")
    shot(page, "refusals")


def test_the_event_page_fits_a_375_pixel_phone_without_sideways_scrolling(cluster, person, shot):
    page = person(width=375, height=812)
    long_title = "A" * 120 + " party"
    event_path = create_by_api(page, cluster.url(0), long_title)
    upload_by_api(page, cluster.url(0), event_path, 6)
    upload_by_api(page, cluster.url(0), event_path, 7)
    open_event_live(page, cluster.url(0) + event_path)
    expect(page.locator("[data-part=photos] img")).to_have_count(2)
    widths = page.evaluate("[document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]")
    assert widths[0] <= widths[1], widths
    shot(page, "phone")

    page.locator("[data-part=photos] a.photo-link").first.click()
    expect(page.locator("#viewer")).to_be_visible()
    expect(page.locator("#viewer-caption")).to_have_text("Photo 1, by you")
    page.keyboard.press("Escape")
    expect(page.locator("#viewer")).to_be_hidden()
    expect(page.locator("[data-part=photos] a.photo-link").first).to_be_focused()


def test_a_cross_site_form_post_without_a_token_is_refused(cluster, person):
    page = person()
    site = cluster.url(0)
    page.goto(site + "/")  # a user of the site, with an identity cookie
    forged = "http://127.0.0.1:9/prize.html"  # another origin on the same host: the cookie goes along
    page.route(forged, lambda route: route.fulfill(content_type="text/html", body=(
        f'<form id="f" method="post" action="{site}/events"><input name="title" value="Forged"></form>'
        '<script>document.getElementById("f").submit()</script>')))
    with page.expect_response(f"{site}/events") as answer:
        page.goto(forged)
    assert answer.value.status == 403
    expect(page.locator("h1")).to_have_text("Refused")

    page.goto(site + "/")
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    without_token = page.request.post(site + "/events", form={"title": "No token"}, max_redirects=0)
    assert without_token.status == 403
    foreign = page.request.post(site + "/events", form={"title": "Foreign", "csrf_token": token},
                                headers={"Origin": "http://127.0.0.1:9"}, max_redirects=0)
    assert foreign.status == 403
    allowed = page.request.post(site + "/events", form={"title": "Mine", "csrf_token": token},
                                headers={"Origin": site}, max_redirects=0)
    assert allowed.status == 303


def test_an_iphone_heic_photo_is_accepted_and_shown(cluster, person):
    pillow_heif.register_heif_opener()
    heic = BytesIO()
    Image.new("RGB", (320, 240), (20, 120, 200)).save(heic, "HEIF")
    page = person()
    event_path = create_by_api(page, cluster.url(2), "Phone photos")
    open_event_live(page, cluster.url(2) + event_path)
    page.locator("#photo-input").set_input_files([{"name": "IMG_0001.HEIC", "mimeType": "image/heic",
                                                  "buffer": heic.getvalue()}])
    expect(page.locator("#queue li.done")).to_have_count(1)
    thumb = page.locator("[data-part=photos] img")
    expect(thumb).to_have_count(1)
    expect(thumb).to_have_js_property("complete", True)
    assert thumb.evaluate("img => img.naturalWidth") > 0


def test_without_scripts_the_forms_still_create_upload_and_vote(cluster, person):
    page = person(scripts=False)
    page.goto(cluster.url(1) + "/")
    page.get_by_label("Event title").fill("Plain picnic")
    page.get_by_role("button", name="Create event").click()
    expect(page.locator(".notice-good")).to_contain_text("Your event is ready")
    expect(page.locator("#share-link")).to_have_value(re.compile(r"/events/[0-9a-f-]{36}$"))
    page.locator("#photo-input").set_input_files([jpeg("plain.jpg", 8)])
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("[data-part=photos] img")).to_have_count(1)
    page.locator("#photo-input").set_input_files([{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hi"}])
    page.get_by_role("button", name="Upload").click()
    expect(page.locator(".notice-bad")).to_have_text(re.compile("^This file isn't a photo the event can take"))
    page.get_by_role("button", name="Accept version 1").click()
    expect(page.locator("[data-part=banner]")).to_contain_text(re.compile("Voting on version 1|Published"))
