"""Whether each peer answers us, as `/api/status`, the status page and `/metrics` show it.

A peer is reachable only when it answered a signed ping with a proof that it holds the same
secret (an HMAC over our nonce). Otherwise the problem is said in words a person can act on:
down, refused our signature, clock skew (with the skew the peer measured), or TLS.
"""

from __future__ import annotations

import asyncio
import hmac
import ssl
from dataclasses import dataclass

import aiohttp

from web.peers.auth import NONCE_HEADER, proof, signed_headers
from web.peers.transport import PING_PATH, refusal_of

PING_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class PeerStatus:
    site: int
    reachable: bool
    problem: str | None = None

    def as_json(self, url: str) -> dict:
        body = {"site": self.site, "url": url, "reachable": self.reachable}
        if self.problem is not None:
            body["problem"] = self.problem
        return body


def describe_failure(error: BaseException) -> str:
    """Why a request to a peer got no answer, for a person."""
    if isinstance(error, (aiohttp.ClientSSLError, ssl.SSLError)) or \
            isinstance(getattr(error, "os_error", None), ssl.SSLError):
        return f"TLS: the connection could not be secured (certificate not trusted, or handshake " \
               f"failed): {error}"
    if isinstance(error, asyncio.TimeoutError):
        return f"down: no answer within {PING_TIMEOUT_S:g} s"
    return f"down: {error or type(error).__name__}"


def describe_refusal(refusal) -> str:
    if refusal.reason == "signature":
        return "refused our signature: the site-to-site secrets differ"
    if refusal.reason == "skew" and isinstance(refusal.skew_s, (int, float)):
        side = "ahead of" if refusal.skew_s > 0 else "behind"
        return (f"clock skew: its clock is {abs(refusal.skew_s):.1f} s {side} ours, more than "
                f"the protocol allows")
    return f"refused our request ({refusal.reason}): {refusal.detail}"


async def check_peer(session: aiohttp.ClientSession, settings, own_site: int, peer: int) -> PeerStatus:
    headers = signed_headers(settings.secret, own_site, "GET", PING_PATH)
    try:
        timeout = aiohttp.ClientTimeout(total=PING_TIMEOUT_S)
        async with session.get(settings.peer_url(peer) + PING_PATH, headers=headers,
                               timeout=timeout) as resp:
            if resp.status == 401:
                return PeerStatus(peer, False, describe_refusal(await refusal_of(peer, resp)))
            if resp.status != 200:
                return PeerStatus(peer, False, f"answered HTTP {resp.status} to a ping")
            answer = await resp.json(content_type=None)
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
        return PeerStatus(peer, False, describe_failure(e))
    except ValueError:
        return PeerStatus(peer, False, "answered a ping with something that is not JSON")
    expected = proof(settings.secret, peer, headers[NONCE_HEADER])
    if not isinstance(answer, dict) or not hmac.compare_digest(str(answer.get("proof", "")), expected):
        return PeerStatus(peer, False, "answered without proving it holds our secret (not a site "
                                       "of this deployment, or a different secret)")
    return PeerStatus(peer, True)


async def check_peers(session: aiohttp.ClientSession, settings, own_site: int) -> list[PeerStatus]:
    """Every other site, checked at once."""
    peers = [s for s in settings.sites if s != own_site]
    return list(await asyncio.gather(*(check_peer(session, settings, own_site, p) for p in peers)))
