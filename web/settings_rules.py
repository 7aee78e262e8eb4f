"""Settings that cannot work, refused at start-up in words that name the keys to change.

Checked once the file and the command line are merged, before any site binds a port: a plain
HTTP link where TLS is configured, an `https` URL without certificates, a bind address that
cannot serve the site's own URL, the shipped example secrets on an address other machines
can reach, or a site-to-site channel that does not exist.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

# The secrets shipped in settings.toml: anyone can read them, so they only do on loopback.
EXAMPLE_SECRET = "change-me-site-to-site-secret"
EXAMPLE_COOKIE_SECRET = "change-me-cookie-secret"
WILDCARD_HOSTS = ("", "0.0.0.0", "::")


class SettingsError(ValueError):
    """Settings that cannot work; the message names the keys."""


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def problems(settings) -> list[str]:
    """Every reason these settings cannot run a deployment, in words; [] when they can."""
    unusable_urls = _url_problems(settings)
    if unusable_urls:  # the other rules read every site's URL
        return unusable_urls
    return [*_tls_problems(settings), *_bind_problems(settings), *_secret_problems(settings),
            *_protocol_problems(settings)]


def check(settings) -> None:
    found = problems(settings)
    if found:
        raise SettingsError("; ".join(found))


def _url_problems(settings) -> list[str]:
    found = []
    for key, urls in (("sites.urls", settings.urls), ("sites.public_urls", settings.public_urls)):
        if urls and len(urls) < settings.site_count:
            found.append(f"{key} lists {len(urls)} URL(s) for {settings.site_count} sites "
                         f"(one per site, index = site number)")
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                found.append(f"{key}: {url!r} is not an http:// or https:// URL with a host")
    return found


def _tls_problems(settings) -> list[str]:
    tls = settings.tls
    given = {name: getattr(tls, name) for name in ("cert", "key", "ca")}
    if any(given.values()) and not all(given.values()):
        missing = ", ".join(f"tls.{name}" for name, value in given.items() if not value)
        return [f"TLS needs tls.cert, tls.key and tls.ca together: {missing} not set"]
    links = [(f"sites.urls[{k}]", settings.site_url(k)) for k in settings.sites]
    links += [(f"SITE_PEER_URLS[{k}]", url) for k, url in settings.peer_urls]
    if tls.enabled:
        plain = [f"{key} = {url!r}" for key, url in links if urlsplit(url).scheme != "https"]
        if plain:
            return ["with [tls] set, sites talk to each other only over TLS, but "
                    + ", ".join(plain) + " is plain http (use https:// URLs in sites.urls)"]
        return []
    if any(urlsplit(url).scheme == "https" for _, url in links):
        return ["sites.urls are https:// but [tls] cert, key and ca are not set "
                "(make them with: python -m web.deployment)"]
    return []


def _bind_problems(settings) -> list[str]:
    host = settings.host
    found = []
    for k in settings.sites:
        url_host = urlsplit(settings.site_url(k)).hostname or ""
        if is_loopback(host) and not is_loopback(url_host):
            found.append(f"sites.host = {host!r} is a loopback address, so site {k} cannot be "
                         f"reached at its URL sites.urls[{k}] = {settings.site_url(k)!r} from "
                         f"another machine (bind sites.host to \"0.0.0.0\" or this machine's "
                         f"address)")
        elif is_loopback(url_host) and not is_loopback(host) and host not in WILDCARD_HOSTS:
            found.append(f"sites.host = {host!r} does not listen on loopback, but site {k}'s URL "
                         f"sites.urls[{k}] = {settings.site_url(k)!r} does")
    return found


PEER_CHANNELS = ("websocket", "http")


def _protocol_problems(settings) -> list[str]:
    channel = settings.protocol.peer_channel
    if channel not in PEER_CHANNELS:
        return [f"protocol.peer_channel = {channel!r} is neither \"websocket\" (one channel per "
                f"pair of sites) nor \"http\" (a signed POST per batch of messages)"]
    return []


def _secret_problems(settings) -> list[str]:
    if is_loopback(settings.host):
        return []
    found = []
    for key, value, example in (("sites.secret", settings.secret, EXAMPLE_SECRET),
                                ("sites.cookie_secret", settings.cookie_secret,
                                 EXAMPLE_COOKIE_SECRET)):
        if value == example or len(value) < 16:
            found.append(f"{key} is the shipped example (or shorter than 16 characters) while "
                         f"sites.host = {settings.host!r} is reachable from other machines: set "
                         f"a random secret (python -m web.deployment makes them)")
    return found
