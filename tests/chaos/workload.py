"""The clients of a chaos run: one thread per user (own cookie jar), at random sites.

Each user reads an event, then does what a person would with what they see: uploads photos to
an open event, accepts a montage (which starts a round), accepts or rejects in a running round
(or forgets to vote), and now and then tries what must be refused (an upload while voting or
after publication, a stale montage version, a vote by a non-submitter, a second vote at another
site). New events are created while too few are active. Every request is in the history.
"""

from __future__ import annotations

import http.client
import io
import itertools
import random
import threading
import time
from datetime import datetime

from PIL import Image

from eventstore.imaging import normalize_upload
from tests.chaos.history import FAIL, INFO, OK, History
from tests.e2e.cluster import Client

CLIENT_TIMEOUT_S = 20.0
LARGE_PHOTO = (400, 300)
MAX_PHOTOS = 8  # per event: montages stay cheap on a 2-core machine


def outcome_of(status: int) -> str:
    if 200 <= status < 300:
        return OK
    if 400 <= status < 500 or status == 503:  # 503: the API promises nothing was done
        return FAIL
    return INFO


class World:
    """What the users share out of band: the events' links, and which ones are voting."""

    def __init__(self, target_active: int):
        self.target_active = target_active
        self.events: list[str] = []
        self.retired: set[str] = set()
        self.voting_until: dict[str, float] = {}  # event -> deadline (epoch) a user saw
        self._lock = threading.Lock()
        self._photo_numbers = itertools.count(1)

    def add(self, event_id: str) -> None:
        with self._lock:
            self.events.append(event_id)

    def active(self) -> list[str]:
        with self._lock:
            return [e for e in self.events if e not in self.retired]

    def retire(self, event_id: str) -> None:
        with self._lock:
            self.retired.add(event_id)

    def saw_voting(self, event_id: str, deadline: float) -> None:
        with self._lock:
            self.voting_until[event_id] = deadline

    def voting(self) -> list[str]:
        now = time.time()
        with self._lock:
            return [e for e, d in self.voting_until.items() if d > now and e not in self.retired]

    def photo_number(self) -> int:
        return next(self._photo_numbers)


def unique_photo(rng: random.Random, number: int, size: tuple[int, int] = (48, 36)) -> tuple[bytes, str]:
    """A JPEG of noise, and the sha256 a site will give it (sites re-encode uploads)."""
    image = Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, comment=f"chaos photo {number}".encode())
    data = out.getvalue()
    return data, normalize_upload(data, max_pixels=10_000_000).sha256


class Worker(threading.Thread):
    def __init__(self, process: int, sites: tuple[int, ...], client: Client, world: World,
                 history: History, seed: int, stop: threading.Event):
        super().__init__(name=f"client-{process}", daemon=True)
        self.process = process
        self.sites = sites
        self.client = client  # one person: one identity at every site
        self.world = world
        self.history = history
        self.rng = random.Random(seed * 1000 + process)
        self.stop = stop
        self.user = ""
        self.voted: dict[tuple[str, int], set[int]] = {}  # (event, round) -> sites voted at
        self.errors: list[str] = []

    # --- one recorded operation -------------------------------------------------------------
    def call(self, f: str, site: int, value: dict, request) -> tuple[str, dict]:
        invocation = self.history.invoke(self.process, f, site, {**value, "user": self.user})
        try:
            status, body = request()
        except (OSError, http.client.HTTPException) as e:
            # Refused: the request never reached the site (definite); a timeout or a reset
            # connection may come after the site acted on it (indefinite).
            refused = isinstance(getattr(e, "reason", e), ConnectionRefusedError)
            outcome, result = (FAIL if refused else INFO), {"exception": repr(e)}
        else:
            body = body if isinstance(body, dict) else {"text": str(body)[:200]}
            outcome, result = outcome_of(status), {"status": status, **self.summary(f, body)}
        self.history.complete(invocation, outcome, result)
        return outcome, result

    @staticmethod
    def summary(f: str, body: dict) -> dict:
        if "error" in body:
            return {"error": body["error"], "message": str(body.get("message", ""))[:120]}
        if f == "read":
            vote = body.get("vote")
            return {
                "state": body["state"], "montage_version": body["montage_version"],
                "published_version": body["published_version"],
                "last_outcome": body["last_outcome"], "is_submitter": body["you"]["is_submitter"],
                "vote": vote and {k: vote[k] for k in ("round", "montage_version", "deadline",
                                                       "my_vote", "closed") if k in vote},
                "photos": [p["photo_id"] for p in body["photos"]],
            }
        if f == "upload":
            return {"montage_version": body["montage_version"],
                    "photos": [{k: p[k] for k in ("photo_id", "sha256", "version")}
                               for p in body["photos"]]}
        return {k: body[k] for k in ("event_id", "home_site", "round", "deadline", "recorded")
                if k in body}

    # --- what a user does -----------------------------------------------------------------------
    def site(self) -> int:
        return self.rng.choice(self.sites)

    def create(self) -> None:
        title = f"chaos {self.process}-{self.rng.randrange(10**6)}"
        outcome, result = self.call("create", site := self.site(), {"title": title},
                                    lambda: self.client.post_json(site, "/api/events", {"title": title}))
        if outcome == OK:
            self.world.add(result["event_id"])

    def read(self, event_id: str) -> dict | None:
        site = self.site()
        outcome, result = self.call("read", site, {"event_id": event_id},
                                    lambda: self.client.get_json(site, f"/api/events/{event_id}"))
        return result if outcome == OK else None

    def upload(self, event_id: str) -> None:
        photos = []
        for _ in range(2 if self.rng.random() < 0.2 else 1):
            number = self.world.photo_number()
            # Now and then a larger photo (~150 kB shipped): seconds on a throttled link.
            size = LARGE_PHOTO if self.rng.random() < 0.15 else (48, 36)
            data, sha = unique_photo(self.rng, number, size)
            photos.append((f"chaos-{number}.jpg", data, "image/jpeg", sha))
        site = self.site()
        self.call("upload", site, {"event_id": event_id, "shas": [p[3] for p in photos]},
                  lambda: self.client.upload(site, event_id, [p[:3] for p in photos]))

    def vote(self, event_id: str, version: int, decision: str, site: int | None = None) -> str:
        site = self.site() if site is None else site
        body = {"montage_version": version, "decision": decision}
        outcome, _ = self.call("vote", site, {"event_id": event_id, **body},
                               lambda: self.client.post_json(site, f"/api/events/{event_id}/votes", body))
        return outcome

    def act(self) -> None:
        rng, active = self.rng, self.world.active()
        if not active or (len(active) < self.world.target_active and rng.random() < 0.2):
            return self.create()
        voting = self.world.voting()
        event_id = rng.choice(voting if voting and rng.random() < 0.6 else active)
        view = self.read(event_id)
        if view is None:
            return None
        if view["state"] == "published":
            self.world.retire(event_id)
            return self.upload(event_id) if rng.random() < 0.2 else None  # must get 409
        if view["state"] == "voting":
            return self.in_round(event_id, view)
        version = view["montage_version"]
        if view["is_submitter"] and version > 0 and (rng.random() < 0.3 or version >= MAX_PHOTOS):
            stale = version > 1 and rng.random() < 0.05  # must get 409 superseded_montage
            self.vote(event_id, version - stale, "accept")
            return None
        if version < MAX_PHOTOS:
            return self.upload(event_id)
        return None

    def in_round(self, event_id: str, view: dict) -> None:
        rng, vote = self.rng, view["vote"]
        self.world.saw_voting(event_id, _epoch(vote["deadline"]))
        voted_at = self.voted.setdefault((event_id, vote["round"]), set())
        if not view["is_submitter"]:
            if rng.random() < 0.1:
                self.vote(event_id, vote["montage_version"], "accept")  # must get 403
            elif rng.random() < 0.2:
                self.upload(event_id)  # must get 409 voting_in_progress
            return
        if not voted_at:
            r = rng.random()
            if r < 0.05:
                voted_at.add(-1)  # forgets to vote: the round times out
                return
            decision = "reject" if r < 0.15 else "accept"
            site = self.site()
            if self.vote(event_id, vote["montage_version"], decision, site) != INFO:
                voted_at.add(site)
        elif rng.random() < 0.08:  # a second vote, at another site: each site keeps its own
            others = [s for s in self.sites if s not in voted_at]
            if others:
                site = rng.choice(others)
                decision = "reject" if rng.random() < 0.2 else "accept"
                self.vote(event_id, vote["montage_version"], decision, site)
                voted_at.add(site)
        elif rng.random() < 0.1:
            self.upload(event_id)  # must get 409 voting_in_progress

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                if not self.user:
                    self.identify()
                    continue
                self.act()
                self.stop.wait(self.rng.uniform(0.0, 0.15))
        except Exception as e:  # a harness bug must show, not silently end the thread
            self.errors.append(repr(e))
            raise

    def identify(self) -> None:
        try:
            status, body = self.client.get_json(self.site(), "/api/me")
            if status == 200:
                self.user = body["user_id"]
        except (OSError, http.client.HTTPException):
            self.stop.wait(0.2)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()
