"""Make a deployment's secrets, CA and per-site certificates, and its settings file.

    python -m web.deployment --hosts dc0.example,dc1.example,dc2.example,dc3.example --out deploy/
    python -m web.deployment --sites 3 --hosts 10.0.0.1,10.0.0.2,10.0.0.3 --port 9443 --out d/

Writes into OUT: `ca.key` and `ca.crt` (the deployment's own certificate authority), per site
`site-K.key` and `site-K.crt` (its subjectAltName is the site's host: a DNS name, or an IP
address), and `settings.toml` (`sites.urls` as https://HOST:PORT, fresh random `secret` and
`cookie_secret`, `[tls]` paths with `{site}`). Keys and the settings are written 0600. A
host may carry its own port (`127.0.0.1:18001`). Existing files are never overwritten
without --force. Machine K needs settings.toml, ca.crt, site-K.crt and site-K.key; keep
ca.key off the machines (it only signs new site certificates).
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import secrets
import sys
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_PORT = 8443
CA_DAYS = 10 * 365
SITE_DAYS = 2 * 365
SECRET_MODE, PUBLIC_MODE = 0o600, 0o644


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "photo sessions"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _validity(builder: x509.CertificateBuilder, days: int) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    # An hour back: a machine whose clock is a little behind still accepts a fresh certificate.
    return builder.not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(
        now + datetime.timedelta(days=days))


def make_ca(common_name: str = "photo sessions deployment CA"):
    """(private key, self-signed certificate) of a CA that can sign site certificates only."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    builder = (x509.CertificateBuilder().subject_name(_name(common_name))
               .issuer_name(_name(common_name)).public_key(public)
               .serial_number(x509.random_serial_number())
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                            crl_sign=True, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False,
                                            key_agreement=False, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False))
    return key, _validity(builder, CA_DAYS).sign(key, hashes.SHA256())


def subject_alt_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def issue_site_cert(ca_key, ca_cert, site: int, host: str):
    """(private key, certificate) for a site reached at `host`, signed by the CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder().subject_name(_name(f"site {site} ({host})"))
               .issuer_name(ca_cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .add_extension(x509.SubjectAlternativeName([subject_alt_name(host)]), critical=False)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False,
                                            crl_sign=False, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False,
                                            key_agreement=False, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                     ExtendedKeyUsageOID.CLIENT_AUTH]),
                              critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca_key.public_key()), critical=False))
    return key, _validity(builder, SITE_DAYS).sign(ca_key, hashes.SHA256())


def key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert_pem(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def site_urls(hosts: list[str], port: int) -> list[tuple[str, str]]:
    """(host, https URL) per site; a host given as HOST:PORT keeps its own port."""
    found = []
    for entry in hosts:
        parts = urlsplit("//" + entry.strip())
        if not parts.hostname:
            raise ValueError(f"--hosts: {entry!r} is not a host name or address")
        host = parts.hostname
        shown = f"[{host}]" if ":" in host else host
        found.append((host, f"https://{shown}:{parts.port or port}"))
    return found


def settings_text(urls: list[str]) -> str:
    listed = ",\n".join(f'    "{url}"' for url in urls)
    return f"""# Made by `python -m web.deployment`: the same file on every machine. It holds the
# deployment's secrets: keep it 0600. Keys not set here take the defaults of settings.toml.

[sites]
count = {len(urls)}
host = "0.0.0.0"          # listen on every address; site k binds the port of its own URL
urls = [                  # how sites reach each other, index = site number
{listed},
]
# Browsers through a reverse proxy (default: urls), and one identity across hosts:
# public_urls = ["https://photos.example", ...]
# cookie_domain = ".photos.example"
secret = "{secrets.token_urlsafe(32)}"
cookie_secret = "{secrets.token_urlsafe(32)}"

[tls]                     # relative paths are relative to this file's folder
cert = "site-{{site}}.crt"
key = "site-{{site}}.key"
ca = "ca.crt"
"""


def deployment_files(hosts: list[str], port: int) -> dict[str, tuple[bytes, int]]:
    """File name -> (content, mode) of a whole deployment."""
    sites = site_urls(hosts, port)
    ca_key, ca_cert = make_ca()
    files = {"ca.key": (key_pem(ca_key), SECRET_MODE), "ca.crt": (cert_pem(ca_cert), PUBLIC_MODE)}
    for k, (host, _) in enumerate(sites):
        key, cert = issue_site_cert(ca_key, ca_cert, k, host)
        files[f"site-{k}.key"] = (key_pem(key), SECRET_MODE)
        files[f"site-{k}.crt"] = (cert_pem(cert), PUBLIC_MODE)
    files["settings.toml"] = (settings_text([url for _, url in sites]).encode(), SECRET_MODE)
    return files


def write_files(out: Path, files: dict[str, tuple[bytes, int]], force: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, (content, mode) in files.items():
        path = out / name
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
        fd = os.open(path, flags, mode)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(fd, mode)  # an overwritten file keeps its old mode otherwise
            f.write(content)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Make a deployment's secrets, CA, per-site certificates and settings.toml.")
    parser.add_argument("--hosts", required=True,
                        help="comma-separated host names or addresses, one per site (HOST or "
                             "HOST:PORT), index = site number")
    parser.add_argument("--sites", type=int, help="number of sites (checked against --hosts)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port of a host given without one (default {DEFAULT_PORT})")
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    args = parser.parse_args(argv)
    hosts = [h for h in args.hosts.split(",") if h.strip()]
    if args.sites is not None and args.sites != len(hosts):
        parser.error(f"--sites {args.sites} but --hosts names {len(hosts)} host(s)")
    try:
        files = deployment_files(hosts, args.port)
    except ValueError as error:
        parser.error(str(error))
    existing = [str(args.out / name) for name in files if (args.out / name).exists()]
    if existing and not args.force:
        print(f"not overwriting {', '.join(existing)} (use --force); nothing was written",
              file=sys.stderr)
        return 1
    write_files(args.out, files, args.force)
    print(f"wrote {', '.join(files)} to {args.out}")
    print(f"machine K needs settings.toml, ca.crt, site-K.crt and site-K.key; keep ca.key "
          f"elsewhere. Start site K there with: python launcher.py --settings "
          f"{args.out / 'settings.toml'} --only K")
    return 0


if __name__ == "__main__":
    sys.exit(main())
