"""`python -m web.deployment`: a deployment's CA, per-site certificates, secrets and settings."""

from __future__ import annotations

import ipaddress
import stat
import subprocess
import sys

import pytest
from cryptography import x509

from web.deployment import main
from web.settings import PROJECT_ROOT, load_settings
from web.settings_rules import EXAMPLE_COOKIE_SECRET, EXAMPLE_SECRET

HOSTS = "dc0.example,dc1.example,10.0.0.3,[::1]:9443"


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def load_cert(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_the_command_writes_a_ca_a_key_and_cert_per_site_and_the_settings(tmp_path):
    out = tmp_path / "deploy"
    done = subprocess.run([sys.executable, "-m", "web.deployment", "--sites", "4", "--hosts",
                           HOSTS, "--out", str(out)], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    names = {"ca.key", "ca.crt", "settings.toml",
             *(f"site-{k}.{ext}" for k in range(4) for ext in ("key", "crt"))}
    assert {p.name for p in out.iterdir()} == names
    for name in names:
        secret = name.endswith(".key") or name == "settings.toml"
        assert mode(out / name) == (0o600 if secret else 0o644), name


def test_each_site_certificate_is_issued_by_the_ca_for_its_own_host(tmp_path):
    assert main(["--hosts", HOSTS, "--out", str(tmp_path)]) == 0
    ca = load_cert(tmp_path / "ca.crt")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    expected = [x509.DNSName("dc0.example"), x509.DNSName("dc1.example"),
                x509.IPAddress(ipaddress.ip_address("10.0.0.3")),
                x509.IPAddress(ipaddress.ip_address("::1"))]
    for k, name in enumerate(expected):
        cert = load_cert(tmp_path / f"site-{k}.crt")
        cert.verify_directly_issued_by(ca)  # raises when the signature or issuer is not the CA's
        assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value[:] == [name]
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_the_settings_name_every_site_over_https_with_fresh_secrets_and_tls_paths(tmp_path):
    assert main(["--hosts", HOSTS, "--out", str(tmp_path / "a")]) == 0
    assert main(["--hosts", HOSTS, "--out", str(tmp_path / "b")]) == 0
    settings = load_settings(tmp_path / "a" / "settings.toml")  # passes every start-up rule
    assert settings.urls == ("https://dc0.example:8443", "https://dc1.example:8443",
                             "https://10.0.0.3:8443", "https://[::1]:9443")
    assert settings.site_count == 4 and settings.host == "0.0.0.0"
    assert settings.tls.path("cert", 2) == tmp_path / "a" / "site-2.crt"
    assert settings.tls.path("key", 2) == tmp_path / "a" / "site-2.key"
    assert settings.tls.path("ca", 2) == tmp_path / "a" / "ca.crt"
    assert settings.secret != settings.cookie_secret
    assert {settings.secret, settings.cookie_secret}.isdisjoint({EXAMPLE_SECRET, EXAMPLE_COOKIE_SECRET})
    other = load_settings(tmp_path / "b" / "settings.toml")
    assert other.secret != settings.secret and other.cookie_secret != settings.cookie_secret


def test_existing_files_are_never_overwritten_without_force(tmp_path, capsys):
    assert main(["--hosts", "dc0.example", "--out", str(tmp_path)]) == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    (tmp_path / "site-0.key").chmod(0o644)
    assert main(["--hosts", "dc0.example", "--out", str(tmp_path)]) != 0
    assert "--force" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before

    assert main(["--hosts", "dc0.example", "--out", str(tmp_path), "--force"]) == 0
    assert (tmp_path / "ca.crt").read_bytes() != before["ca.crt"]
    assert mode(tmp_path / "site-0.key") == 0o600


def test_a_site_count_that_does_not_match_the_hosts_is_refused(tmp_path):
    with pytest.raises(SystemExit) as refused:
        main(["--sites", "3", "--hosts", "a.example,b.example", "--out", str(tmp_path)])
    assert refused.value.code != 0
    assert not list(tmp_path.iterdir())
