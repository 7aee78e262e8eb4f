"""What guests see, in a real browser at desktop width and at 375 px: busy buttons, a reject that
asks first, names beside earlier photos, a favicon on every page, the audit page at 4 and at 40
photos, and an outage of the event's home site in words (the last test kills it with SIGKILL).
Every wait is on a condition; screenshots go to test-artifacts/browser/."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_event_pages import create_by_api, jpeg, open_event_live, upload_by_api
from tests.e2e.cluster import Client
from tests.images import jpeg_bytes

pytestmark = pytest.mark.browser

WIDTHS = (1280, 375)


def no_sideways_scrolling(page) -> None:
    widths = page.evaluate("[document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]")
    assert widths[0] <= widths[1], widths


def save_name(page, name: str) -> None:
    page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="Save name").click()
    expect(page.locator(".name-form .form-status")).to_contain_text(name)


def test_a_name_saved_after_uploading_shows_beside_every_earlier_photo(cluster, person, shot):
    ana, ben = person(), person(width=375, height=812)
    event_path = create_by_api(ana, cluster.url(0), "Names later")
    upload_by_api(ana, cluster.url(0), event_path, 11)  # before any name
    upload_by_api(ben, cluster.url(1), event_path, 12)
    open_event_live(ana, cluster.url(0) + event_path)
    expect(ana.locator("[data-part=photos] .by").first).to_have_text("by you")
    save_name(ana, "Ana")
    ana.reload()
    expect(ana.locator("[data-part=photos] .by").first).to_have_text("by Ana (you)")  # her own cookie

    open_event_live(ben, cluster.url(1) + event_path)
    expect(ben.locator("[data-part=photos] .by").first).to_have_text("by guest 1")  # not known yet
    ana.locator("#photo-input").set_input_files([jpeg("ana-2.jpg", 13)])
    expect(ana.locator("#queue li.done")).to_have_count(1)
    by = ben.locator("[data-part=photos] .by")
    expect(by).to_have_count(3)
    expect(by.nth(0)).to_have_text("by Ana")  # the earlier photo too, on another site, live
    expect(by.nth(2)).to_have_text("by Ana")
    expect(by.nth(1)).to_have_text("by you")
    no_sideways_scrolling(ben)
    shot(ana, "names-1280")
    shot(ben, "names-375")
    photos = ben.request.get(cluster.url(2) + "/api" + event_path).json()["photos"]
    assert [p["submitter_name"] for p in photos] == ["Ana", "", "Ana"]


@pytest.mark.parametrize("width", WIDTHS)
def test_vote_buttons_say_they_are_working_and_a_refusal_says_what_to_do(cluster, person, shot, width):
    alice, bob = person(width=width), person(width=width)
    event_path = create_by_api(alice, cluster.url(0), f"Busy buttons {width}")
    upload_by_api(alice, cluster.url(0), event_path, 21)
    upload_by_api(bob, cluster.url(1), event_path, 22)
    open_event_live(alice, cluster.url(0) + event_path)

    refused = json.dumps({"error": "site_unreachable", "message": "x"})
    alice.route("**/votes", lambda route: route.fulfill(status=503, content_type="application/json", body=refused))
    alice.get_by_role("button", name="Accept version 2").click()
    expect(alice.locator("#vote-message")).to_have_text(re.compile("^Your vote couldn't be saved"))
    accept = alice.get_by_role("button", name="Accept version 2")
    expect(accept).to_be_enabled()
    shot(alice, f"vote-refused-{width}")
    alice.unroute("**/votes")

    held = []
    alice.route("**/votes", lambda route: held.append(route))
    accept.click()
    busy = alice.locator("button.busy")
    expect(busy).to_have_text("Starting the vote…")
    expect(busy).to_be_disabled()
    expect(busy).to_have_attribute("aria-busy", "true")
    expect(alice.locator("#vote-message")).to_contain_text("Still working", timeout=10_000)
    shot(alice, f"vote-busy-{width}")
    held[0].continue_()
    expect(alice.locator("[data-part=vote]")).to_contain_text("You accepted version 2")
    expect(alice.locator("#vote-message")).to_be_empty()

    open_event_live(bob, cluster.url(1) + event_path)
    expect(bob.locator("[data-part=vote] .tally")).to_contain_text("1 of 2 accepted")
    bob.get_by_role("button", name="Reject", exact=True).click()
    ask = bob.locator("#reject-confirm")
    expect(ask).to_be_visible()
    expect(ask).to_contain_text("This ends the vote for everyone")
    expect(bob.get_by_role("button", name="Yes, reject it")).to_be_focused()
    no_sideways_scrolling(bob)
    shot(bob, f"reject-confirm-{width}")
    bob.get_by_role("button", name="Cancel").click()
    expect(ask).to_be_hidden()
    expect(bob.locator("[data-part=vote]")).to_contain_text("Round 1")  # nothing was sent
    bob.get_by_role("button", name="Reject", exact=True).click()
    bob.get_by_role("button", name="Yes, reject it").click()
    expect(bob.locator("[data-part=outcome]")).to_contain_text("someone rejected the montage")


def test_every_page_has_a_favicon_and_nothing_answers_404(cluster, person):
    page = person()
    missing = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    event_path = create_by_api(page, cluster.url(2), "Icons")
    for path in ("/", event_path, event_path + "/audit", "/status"):
        page.goto(cluster.url(2) + path)
        icon = page.locator("link[rel=icon]").first
        assert page.request.get(cluster.url(2) + icon.get_attribute("href")).status == 200
    favicon = page.request.get(cluster.url(2) + "/favicon.ico")
    assert favicon.status == 200 and favicon.body()[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert missing == []


def audit_measure(page, url: str, width: int, name: str, shot) -> int:
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(url)
    expect(page.locator(".change").first).to_be_visible()
    no_sideways_scrolling(page)
    # Column titles on one line each: no title is taller than its row's first cell's line.
    heights = page.evaluate("[...document.querySelectorAll('.timeline th')].map(th => th.scrollWidth <= th.clientWidth)")
    assert all(heights), heights
    # Within each diagram, the times go up.
    for offsets in page.evaluate(
            "[...document.querySelectorAll('svg.sequence')].map(svg => [...svg.querySelectorAll('text')]"
            ".filter(t => t.getAttribute('x') === '4').map(t => t.textContent))"):
        millis = [float(o[1:].split()[0]) * (1 if o.endswith("ms") else 1000) for o in offsets]
        assert millis == sorted(millis), offsets
    shot(page, f"{name}-{width}")
    return page.evaluate("document.scrollingElement.scrollHeight")


def record_height(what: str, width: int, height: int) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with open(ARTIFACTS / "audit-heights.txt", "a") as f:
        f.write(f"{what} at {width} px wide: {height} px tall\n")


def test_the_audit_page_reads_well_at_4_photos(cluster, person, shot):
    alice, bob = person(), person()
    event_path = create_by_api(alice, cluster.url(0), "Audit of four")
    for k, (who, site) in enumerate([(alice, 0), (bob, 1), (alice, 0), (bob, 2)]):
        upload_by_api(who, cluster.url(site), event_path, 30 + k)
    for who, site in ((alice, 0), (bob, 1)):
        answer = who.request.post(f"{cluster.url(site)}/api{event_path}/votes",
                                  data={"montage_version": 4, "decision": "accept"})
        assert answer.status == 200, answer.text()
    open_event_live(alice, cluster.url(0) + event_path)
    expect(alice.locator("[data-part=banner]")).to_contain_text("Published", timeout=30_000)
    viewer = person()
    for width in WIDTHS:
        height = audit_measure(viewer, cluster.url(1) + event_path + "/audit", width, "audit-4", shot)
        record_height("audit, 4 photos", width, height)
        assert height < 5000, height
    expect(viewer.locator(".change h3").filter(has_text="Collect the votes of round 1")).to_be_visible()


def test_the_audit_page_stays_short_at_40_photos_with_retried_conflicts(cluster, person, shot):
    people = [Client(cluster.url) for _ in range(4)]
    status, body = people[0].post_json(0, "/api/events", {"title": "Audit of forty"})
    assert status == 201, body
    event_id = body["event_id"]

    def upload(k: int) -> int:
        data = jpeg_bytes(64, 48, color=(k * 5 % 256, 90, 160))
        return people[k % 4].upload(k % 3, event_id, [(f"p{k}.jpg", data, "image/jpeg")])[0]

    with ThreadPoolExecutor(max_workers=4) as pool:  # at once: some meet each other and retry
        assert set(pool.map(upload, range(40))) == {201}
    viewer = person()
    for width in WIDTHS:
        height = audit_measure(viewer, f"{cluster.url(0)}/events/{event_id}/audit", width, "audit-40", shot)
        record_height("audit, 40 photos", width, height)
        assert height < 12000, height
    # One line per change: the creation and each upload transaction that committed (uploads
    # waiting at a site at once share one: web.uploading), its retries folded into it.
    entries = people[0].get_json(0, f"/api/events/{event_id}/audit")[1]["entries"]
    changes = {e["data"]["txn_id"] for e in entries if e["type"] == "Committed"}
    assert 2 <= len(changes) <= 41, changes
    assert viewer.locator(".change").count() == len(changes)


def test_the_pages_say_in_words_when_the_home_site_is_down_and_what_it_means(cluster, person, shot):
    alice, bob = person(), person()
    phone = person(width=375, height=812)
    voting = create_by_api(alice, cluster.url(0), "Home site down, voting")  # site 0 is its home
    upload_by_api(alice, cluster.url(0), voting, 41)
    upload_by_api(bob, cluster.url(1), voting, 42)
    open_event_live(alice, cluster.url(0) + voting)
    alice.get_by_role("button", name="Accept version 2").click()
    expect(alice.locator("[data-part=vote]")).to_contain_text("You accepted version 2")
    quiet = create_by_api(alice, cluster.url(0), "Home site down, open")
    upload_by_api(bob, cluster.url(1), quiet, 43)
    open_event_live(bob, cluster.url(1) + voting)
    expect(bob.locator("[data-part=outage]")).to_be_empty()

    cluster.kill(0)
    try:
        outage = bob.locator("[data-part=outage]")
        expect(outage).to_contain_text("Site 0, the event's home site, can't be reached right now",
                                       timeout=15_000)
        expect(outage).to_contain_text("votes already cast are kept")
        expect(bob.locator("[data-part=vote] .tally")).to_contain_text("Voted: ")
        shot(bob, "outage-voting-1280")
        open_event_live(phone, cluster.url(2) + voting)
        expect(phone.locator("[data-part=outage]")).to_contain_text("home site")
        no_sideways_scrolling(phone)
        shot(phone, "outage-voting-375")

        open_event_live(phone, cluster.url(1) + quiet)
        expect(phone.locator("[data-part=outage]")).to_contain_text("Photos can't be added until it is back")
        phone.locator("#photo-input").set_input_files([jpeg("while-down.jpg", 44)])
        expect(phone.locator("#queue li.failed")).to_contain_text(
            "One of the event's sites can't be reached right now, so your photo wasn't added", timeout=30_000)
        no_sideways_scrolling(phone)
        shot(phone, "outage-open-375")
    finally:
        cluster.start(0)
        cluster.wait_ready(0)
    expect(bob.locator("[data-part=outage]")).to_be_empty(timeout=15_000)
    expect(bob.locator("[data-part=banner]")).to_contain_text(re.compile("Open for photos|Published"),
                                                              timeout=30_000)
    audit = person()
    audit.goto(cluster.url(1) + voting + "/audit")
    expect(audit.locator(".restart")).to_contain_text("Site 0 crashed and started again")
    expect(audit.locator("table.timeline")).to_contain_text("started again after a crash")
    shot(audit, "audit-restart-1280")
    assert urlsplit(audit.url).path.endswith("/audit")
