"""Site-to-site authentication: an HMAC-SHA256 of method, path, timestamp and body."""

from __future__ import annotations

import hashlib
import hmac
import time

SITE_HEADER = "X-Site"
TIME_HEADER = "X-Timestamp"
SIGNATURE_HEADER = "X-Signature"


def signature(secret: str, method: str, path: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
    mac.update(f"{method.upper()}\n{path}\n{timestamp}\n".encode())
    mac.update(body)
    return mac.hexdigest()


def signed_headers(secret: str, site: int, method: str, path: str, body: bytes) -> dict[str, str]:
    timestamp = f"{time.time():.3f}"
    return {
        SITE_HEADER: str(site),
        TIME_HEADER: timestamp,
        SIGNATURE_HEADER: signature(secret, method, path, timestamp, body),
    }


def verify(secret: str, method: str, path: str, headers, body: bytes, max_skew_s: float) -> bool:
    """True only for a correct signature over a timestamp within max_skew_s of our clock."""
    timestamp = headers.get(TIME_HEADER, "")
    given = headers.get(SIGNATURE_HEADER, "")
    try:
        skew = abs(time.time() - float(timestamp))
    except ValueError:
        return False
    if skew > max_skew_s:
        return False
    expected = signature(secret, method, path, timestamp, body)
    return hmac.compare_digest(expected, given)
