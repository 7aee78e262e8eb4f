"""Site-to-site signatures, checked from the headers alone: each refusal names its cause."""

import asyncio
import ssl

import pytest

from web.peers.auth import DIGEST_HEADER, SITE_HEADER, NonceCache, Verifier, sha256_hex, signed_headers
from web.peers.status import describe_failure

NOW = 1_800_000_000.0


def verifier(secret="s3cret", max_skew_s=30.0) -> Verifier:
    return Verifier(secret, max_skew_s, clock=lambda: NOW)


def headers(secret="s3cret", at=NOW, body=b"body", **changed) -> dict:
    return {**signed_headers(secret, 1, "POST", "/internal/v1/batch", body, now=at), **changed}


@pytest.mark.parametrize("given, reason", [
    (headers(), None),
    (headers(secret="other"), "signature"),
    (headers(at=NOW - 31), "skew"),
    (headers(at=NOW + 31), "skew"),
    (headers(at=NOW - 29), None),
    (headers(**{SITE_HEADER: "2"}), "signature"),
    (headers(**{SITE_HEADER: "one"}), "routing header"),
    (headers(**{DIGEST_HEADER: sha256_hex(b"another body")}), "signature"),
    ({}, "routing header"),
])
def test_a_request_is_accepted_only_with_a_fresh_correct_signature(given, reason):
    refusal = verifier().check("POST", "/internal/v1/batch", given)
    assert (refusal and refusal.reason) == reason


def test_a_signature_for_another_path_or_method_is_refused():
    given = headers()
    assert verifier().check("POST", "/internal/v1/ping", given).reason == "signature"
    assert verifier().check("GET", "/internal/v1/batch", given).reason == "signature"


def test_a_stale_request_says_how_far_the_clocks_are_apart():
    refusal = verifier().check("POST", "/internal/v1/batch", headers(at=NOW - 100))
    assert refusal.as_json()["skew_s"] == pytest.approx(100.0)


def test_the_same_nonce_twice_is_a_replay():
    check, given = verifier(), headers()
    assert check.check("POST", "/internal/v1/batch", given) is None
    assert check.check("POST", "/internal/v1/batch", given).reason == "replayed"


def test_the_digest_of_the_body_is_the_signed_one():
    given = headers(body=b"the body")
    assert verifier().digest_matches(given, sha256_hex(b"the body"))
    assert not verifier().digest_matches(given, sha256_hex(b"another body"))


def test_nonces_are_forgotten_after_their_window_and_never_more_are_kept_than_the_bound():
    now = [0.0]
    cache = NonceCache(keep_s=60, max_entries=2, clock=lambda: now[0])
    assert cache.add("a") is None and cache.add("b") is None
    assert cache.add("a") == "replayed"
    assert cache.add("c") == "busy"
    now[0] = 61
    assert cache.add("a") is None and len(cache) == 1


@pytest.mark.parametrize("error, start", [
    (ssl.SSLCertVerificationError("certificate verify failed"), "TLS"),
    (ssl.SSLError("wrong version number"), "TLS"),
    (ConnectionRefusedError(111, "Connection refused"), "down"),
    (asyncio.TimeoutError(), "down"),
])
def test_a_failure_to_reach_a_peer_is_told_as_tls_or_down(error, start):
    assert describe_failure(error).startswith(start)
