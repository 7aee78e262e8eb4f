"""TLS contexts from `[tls]`: a site serves HTTPS with its own certificate, and trusts as peers
only certificates its deployment's CA issued for the host it dialled.

Peers are checked against `tls.ca` alone, never the system's CAs: a certificate some public CA
issued for a peer's name is no proof that the holder is one of our sites. No client
certificate is asked for, because browsers reach the same port; the site-to-site API is
authenticated by its HMAC.
"""

from __future__ import annotations

import ssl

from web.settings import Settings


def server_context(settings: Settings, site: int) -> ssl.SSLContext | None:
    """What `site` serves HTTPS with; None when TLS is not configured (plain HTTP)."""
    tls = settings.tls
    if not tls.enabled:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tls.path("cert", site), tls.path("key", site))
    return context


def client_context(settings: Settings, site: int) -> ssl.SSLContext | None:
    """How `site` (or a tool using its settings) checks the sites it dials: against the
    deployment's CA, host name included; None when TLS is not configured."""
    tls = settings.tls
    if not tls.enabled:
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=tls.path("ca", site))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
