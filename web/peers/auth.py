"""Site-to-site authentication, decided from the headers alone, before any body is read.

The sender signs (HMAC-SHA256 with the shared secret) the method, the path, every header the
receiver acts on (`X-Site`), a timestamp, a random nonce and the sha256 of the body, which
travels in `X-Content-SHA256`. The receiver checks the signature, the clock skew and that the
nonce is new; only then does it read the body, and it refuses a body whose digest differs.

A refusal names its cause (`Refusal.reason`), so the sender can tell a wrong secret from a
wrong clock: "routing header" (a signed header missing or malformed), "skew" (the timestamp is
too far from the receiver's clock), "signature", "replayed" (a nonce seen in the skew window),
"digest" (the body is not the one signed).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

SITE_HEADER = "X-Site"
TIME_HEADER = "X-Timestamp"
NONCE_HEADER = "X-Nonce"
DIGEST_HEADER = "X-Content-SHA256"
SIGNATURE_HEADER = "X-Signature"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

# Nonces remembered per site. Each stays for two skew windows (a timestamp may lie up to one
# window ahead of the receiver's clock); past this many at once, requests are refused (503)
# rather than forgetting a nonce that could still be replayed.
MAX_NONCES = 100_000


def sha256_hex(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def signature(secret: str, method: str, path: str, site: str, timestamp: str, nonce: str,
              body_sha256: str) -> str:
    text = "\n".join((method.upper(), path, site, timestamp, nonce, body_sha256))
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def signed_headers(secret: str, site: int, method: str, path: str, body: bytes = b"",
                   now: float | None = None) -> dict[str, str]:
    timestamp = f"{time.time() if now is None else now:.3f}"
    nonce = secrets.token_hex(16)
    digest = sha256_hex(body)
    return {
        SITE_HEADER: str(site),
        TIME_HEADER: timestamp,
        NONCE_HEADER: nonce,
        DIGEST_HEADER: digest,
        SIGNATURE_HEADER: signature(secret, method, path, str(site), timestamp, nonce, digest),
    }


def proof(secret: str, site: int, nonce: str) -> str:
    """A ping's answer: shows that `site` holds the secret too (it signs the asker's nonce)."""
    return hmac.new(secret.encode(), f"pong\n{site}\n{nonce}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Refusal:
    reason: str  # "routing header", "skew", "signature", "replayed", "digest" or "busy"
    message: str
    skew_s: float | None = None  # receiver's clock minus the sender's timestamp, for "skew"

    def as_json(self) -> dict:
        body = {"error": "unauthorized", "reason": self.reason, "message": self.message}
        if self.skew_s is not None:
            body["skew_s"] = round(self.skew_s, 3)
        return body


class NonceCache:
    """The nonces accepted within the last `keep_s` seconds, oldest first."""

    def __init__(self, keep_s: float, max_entries: int = MAX_NONCES,
                 clock: Callable[[], float] = time.monotonic):
        self.keep_s = keep_s
        self.max_entries = max_entries
        self.clock = clock
        self._expiry: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._expiry)

    def add(self, nonce: str) -> str | None:
        """None when the nonce is new (it is remembered), else "replayed" or "busy"."""
        now = self.clock()
        while self._expiry and next(iter(self._expiry.values())) <= now:
            self._expiry.popitem(last=False)
        if nonce in self._expiry:
            return "replayed"
        if len(self._expiry) >= self.max_entries:
            return "busy"
        self._expiry[nonce] = now + self.keep_s
        return None


class Verifier:
    """One site's check of the requests its peers sign."""

    def __init__(self, secret: str, max_skew_s: float, clock: Callable[[], float] = time.time):
        self.secret = secret
        self.max_skew_s = max_skew_s
        self.clock = clock
        self.nonces = NonceCache(2 * max_skew_s)

    def check(self, method: str, path: str, headers) -> Refusal | None:
        """None when the headers authenticate the request (its nonce is then used up)."""
        site, timestamp = headers.get(SITE_HEADER, ""), headers.get(TIME_HEADER, "")
        nonce, digest = headers.get(NONCE_HEADER, ""), headers.get(DIGEST_HEADER, "")
        given = headers.get(SIGNATURE_HEADER, "")
        if not (site.isdigit() and nonce and len(digest) == 64 and given):
            return Refusal("routing header", f"Every request needs {SITE_HEADER}, {NONCE_HEADER}, "
                           f"{DIGEST_HEADER} and {SIGNATURE_HEADER}.")
        try:
            skew = self.clock() - float(timestamp)
        except ValueError:
            return Refusal("routing header", f"{TIME_HEADER} must be seconds since the epoch.")
        if not abs(skew) <= self.max_skew_s:
            return Refusal("skew", f"The request's timestamp is {skew:+.1f} s from this site's "
                           f"clock (at most {self.max_skew_s:g} s allowed).", skew)
        expected = signature(self.secret, method, path, site, timestamp, nonce, digest)
        if not hmac.compare_digest(expected, given):
            return Refusal("signature", "The signature does not match: the site-to-site secrets "
                           "differ, or a signed header was changed.")
        problem = self.nonces.add(nonce)
        if problem == "replayed":
            return Refusal("replayed", "This request was seen before.")
        if problem == "busy":
            return Refusal("busy", "Too many requests in the skew window; try again.")
        return None

    def digest_matches(self, headers, body_sha256: str) -> bool:
        return hmac.compare_digest(headers.get(DIGEST_HEADER, ""), body_sha256)
