"""What the audit CLI needs from the sites' settings file: where each site is, and the CA to
verify them against. Read here from the same TOML file, so that eventstore/ imports nothing
from web/; the rule for a site's URL is the one of web.settings.Settings.site_url."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SETTINGS = Path(__file__).resolve().parent.parent / "settings.toml"


@dataclass(frozen=True)
class AuditSettings:
    urls: tuple[str, ...]  # site k is reached at urls[k]
    ca: str | None = None  # a CA file: https sites are verified against it (else the system's)
    database: str = "sqlite"  # the sites' stores ("{site}" for the site), for an offline audit


def read_audit_settings(path: str | Path | None = None, site_count: int | None = None,
                        ca: str | None = None) -> AuditSettings:
    settings_path = Path(path) if path else DEFAULT_SETTINGS
    with open(settings_path, "rb") as f:
        raw = tomllib.load(f)
    sites = raw.get("sites", {})
    count = site_count if site_count is not None else int(sites.get("count", 4))
    if sites.get("urls"):
        urls = tuple(str(u).rstrip("/") for u in sites["urls"])[:count]
    else:
        host, base_port = str(sites.get("host", "127.0.0.1")), int(sites.get("base_port", 8000))
        urls = tuple(f"http://{host}:{base_port + k}" for k in range(count))
    configured = raw.get("tls", {}).get("ca")
    if ca is None and configured:  # as the sites read it: relative to the settings file
        ca = str(settings_path.resolve().parent / configured)
    return AuditSettings(urls, ca, str(raw.get("storage", {}).get("database", "sqlite")))
