"""Settings that cannot work are refused at start-up, in words naming the keys to change."""

from __future__ import annotations

from pathlib import Path

import pytest

from web.settings import Settings, TlsSettings, load_settings
from web.settings_rules import SettingsError, problems

GOOD_SECRETS = {"secret": "s" * 32, "cookie_secret": "c" * 32}
TLS = TlsSettings(cert="/d/site-{site}.crt", key="/d/site-{site}.key", ca="/d/ca.crt")
HTTPS_URLS = ("https://dc0.example:8443", "https://dc1.example:8443")
HTTP_URLS = ("http://dc0.example:8000", "http://dc1.example:8000")


def settings(**fields) -> Settings:
    return Settings(site_count=2, **fields)


@pytest.mark.parametrize("fields", [
    {},  # the shipped settings on loopback
    {"host": "0.0.0.0", "urls": HTTP_URLS, **GOOD_SECRETS},
    {"host": "0.0.0.0", "urls": HTTPS_URLS, "tls": TLS, **GOOD_SECRETS},
    {"host": "::", "urls": HTTPS_URLS, "tls": TLS, **GOOD_SECRETS},
    {"host": "127.0.0.1", "tls": TLS},  # default URLs become https://127.0.0.1:PORT
    {"host": "127.0.0.1", "urls": ("https://127.0.0.1:9001", "https://localhost:9002"), "tls": TLS},
    {"host": "10.0.0.1", "urls": ("http://10.0.0.1:8000", "http://10.0.0.2:8000"), **GOOD_SECRETS},
    {"host": "0.0.0.0", "urls": HTTPS_URLS, "public_urls": ("https://a.example", "https://b.example"),
     "tls": TLS, **GOOD_SECRETS},
])
def test_settings_that_can_work_pass(fields):
    assert problems(settings(**fields)) == []


@pytest.mark.parametrize("fields, named", [
    # The shipped example secrets on an address other machines can reach.
    ({"host": "0.0.0.0"}, ["sites.secret", "sites.cookie_secret"]),
    ({"host": "0.0.0.0", "secret": "s" * 32}, ["sites.cookie_secret"]),
    ({"host": "0.0.0.0", "cookie_secret": "c" * 32}, ["sites.secret"]),
    ({"host": "0.0.0.0", "secret": "short", "cookie_secret": "c" * 32}, ["sites.secret"]),
    # A loopback bind cannot serve a URL other machines dial.
    ({"host": "127.0.0.1", "urls": HTTP_URLS}, ["sites.host", "sites.urls[0]", "sites.urls[1]"]),
    ({"host": "localhost", "urls": ("http://127.0.0.1:1", "http://192.0.2.7:2")},
     ["sites.host", "sites.urls[1]"]),
    # A URL on loopback cannot be served by a bind to another single address.
    ({"host": "10.0.0.1", "urls": ("http://127.0.0.1:1", "http://10.0.0.2:2"), **GOOD_SECRETS},
     ["sites.host", "sites.urls[0]"]),
    # https without certificates; plain http with TLS configured; half a [tls] table.
    ({"host": "0.0.0.0", "urls": HTTPS_URLS, **GOOD_SECRETS}, ["sites.urls", "[tls]"]),
    ({"host": "0.0.0.0", "urls": HTTP_URLS, "tls": TLS, **GOOD_SECRETS},
     ["[tls]", "sites.urls[0]", "sites.urls[1]", "plain http"]),
    ({"host": "0.0.0.0", "urls": ("https://dc0.example", "http://dc1.example"), "tls": TLS,
      **GOOD_SECRETS}, ["sites.urls[1]"]),
    ({"tls": TLS, "peer_urls": ((1, "http://127.0.0.1:9"),)}, ["SITE_PEER_URLS[1]"]),
    ({"tls": TlsSettings(cert="c.pem")}, ["tls.key", "tls.ca"]),
    # URL lists that cannot name every site.
    ({"host": "0.0.0.0", "urls": HTTP_URLS[:1], **GOOD_SECRETS}, ["sites.urls lists 1"]),
    ({"public_urls": ("https://a.example",)}, ["sites.public_urls lists 1"]),
    ({"public_urls": ("a.example", "b.example")}, ["sites.public_urls: 'a.example'"]),
])
def test_settings_that_cannot_work_are_refused_naming_the_keys(fields, named):
    found = " ".join(problems(settings(**fields)))
    for key in named:
        assert key in found


@pytest.mark.parametrize("url, port", [
    ("https://dc0.example", 443),
    ("http://dc0.example", 80),
    ("https://dc0.example:8443/", 8443),
    ("https://[::1]", 443),
])
def test_a_url_without_a_port_binds_its_schemes_default_port(url, port):
    assert Settings(site_count=1, urls=(url,)).site_port(0) == port


def test_public_urls_default_to_urls_and_are_what_people_are_shown():
    plain = Settings(site_count=2, urls=HTTP_URLS)
    assert plain.public_url(1) == "http://dc1.example:8000"
    proxied = Settings(site_count=2, urls=HTTP_URLS,
                       public_urls=("https://photos.example/", "https://b.photos.example"))
    assert proxied.public_url(0) == "https://photos.example"
    assert proxied.site_url(0) == "http://dc0.example:8000"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "deploy" / "settings.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_tls_paths_in_a_settings_file_are_relative_to_its_folder(tmp_path):
    path = write(tmp_path, '[sites]\ncount = 2\n[tls]\ncert = "site-{site}.crt"\n'
                           'key = "/abs/site-{site}.key"\nca = "ca.crt"\n')
    tls = load_settings(path).tls
    assert tls.path("cert", 1) == tmp_path / "deploy" / "site-1.crt"
    assert tls.path("key", 0) == Path("/abs/site-0.key")
    assert tls.path("ca", 3) == tmp_path / "deploy" / "ca.crt"


def test_loading_settings_that_cannot_work_raises_naming_the_key(tmp_path):
    path = write(tmp_path, '[sites]\ncount = 2\nhost = "0.0.0.0"\n'
                           'secret = "change-me-site-to-site-secret"\n'
                           'cookie_secret = "a-long-random-cookie-secret"\n')
    with pytest.raises(SettingsError, match=r"sites\.secret is the shipped example"):
        load_settings(path)


def test_the_shipped_settings_file_loads_on_loopback():
    assert load_settings(None).host == "127.0.0.1"
