"""Settings: read once from settings.toml (plus command-line overrides) into frozen dataclasses."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from web.settings_rules import EXAMPLE_COOKIE_SECRET, EXAMPLE_SECRET, check

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SETTINGS = PROJECT_ROOT / "settings.toml"
LOG_FORMATS = ("text", "json")
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class ProtocolSettings:
    prepare_timeout_s: float = 3.0
    request_timeout_s: float = 5.0
    resend_base_s: float = 0.2
    resend_max_s: float = 5.0
    in_doubt_s: float = 5.0
    ack_wait_s: float = 2.0
    collect_grace_s: float = 30.0  # a collection failing for a site's sake ends the round this long after its deadline
    upload_attempts: int = 30
    hmac_max_skew_s: float = 30.0
    blob_stall_s: float = 10.0  # a photo's transfer to a peer fails after this long without progress
    blob_grace_s: float = 3600.0  # photo files no transaction names are removed once this old
    blob_sweep_every_s: float = 600.0
    duplicate_delivery: bool = False  # tests only: every site-to-site message is sent twice
    peer_channel: str = "websocket"  # or "http": each batch of messages a signed POST


@dataclass(frozen=True)
class CapacitySettings:
    """What one site keeps in memory: running actors, the threads they take turns on, and
    cached event views."""

    max_actors: int = 256
    actor_idle_s: float = 10.0
    actor_threads: int = 1
    cached_events: int = 2000


@dataclass(frozen=True)
class TlsSettings:
    """Paths of this site's certificate and key and of the CA its peers' certificates are
    checked against; `{site}` is replaced by the site number. All three, or none (plain HTTP)."""

    cert: str | None = None
    key: str | None = None
    ca: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.cert and self.key and self.ca)

    def path(self, name: str, site: int) -> Path:
        return Path(getattr(self, name).replace("{site}", str(site)))


@dataclass(frozen=True)
class Settings:
    site_count: int = 4
    base_port: int = 8000
    host: str = "127.0.0.1"
    urls: tuple[str, ...] = ()  # how sites reach each other, index = site number
    public_urls: tuple[str, ...] = ()  # how browsers reach them (a reverse proxy); default urls
    cookie_domain: str | None = None  # e.g. ".photos.example": one identity across hosts
    secret: str = EXAMPLE_SECRET
    cookie_secret: str = EXAMPLE_COOKIE_SECRET
    tls: TlsSettings = field(default_factory=TlsSettings)
    max_contributors: int = 10
    voting_period_s: float = 90.0
    max_photo_mb: float = 25.0
    max_photo_pixels: int = 50_000_000
    data_dir: Path = Path("data")
    database: str = "sqlite"
    protocol: ProtocolSettings = field(default_factory=ProtocolSettings)
    capacity: CapacitySettings = field(default_factory=CapacitySettings)
    crash_at: str | None = None  # a named crash point (tests only): the site SIGKILLs itself there
    # How this site reaches each peer, when not directly (tests route links through proxies).
    peer_urls: tuple[tuple[int, str], ...] = ()
    log_format: str = "text"  # "text" or "json" (one JSON object per line)

    def site_url(self, site: int) -> str:
        if self.urls:
            return self.urls[site].rstrip("/")
        scheme = "https" if self.tls.enabled else "http"
        return f"{scheme}://{self.host}:{self.base_port + site}"

    def public_url(self, site: int) -> str:
        """Where people reach `site`: the links shown on pages."""
        if self.public_urls:
            return self.public_urls[site].rstrip("/")
        return self.site_url(site)

    def peer_url(self, site: int) -> str:
        """Where this site sends site-to-site messages for `site`."""
        return dict(self.peer_urls).get(site, self.site_url(site)).rstrip("/")

    def site_port(self, site: int) -> int:
        if self.urls:
            parts = urlsplit(self.urls[site])
            return parts.port or DEFAULT_PORTS.get(parts.scheme, 80)
        return self.base_port + site

    def site_dir(self, site: int) -> Path:
        return self.data_dir / f"site-{site}"

    @property
    def sites(self) -> tuple[int, ...]:
        return tuple(range(self.site_count))

    @property
    def max_photo_bytes(self) -> int:
        return int(self.max_photo_mb * 1024 * 1024)

    def database_url(self, site: int) -> str:
        """'sqlite' (the embedded default) or an SQLAlchemy URL for this site's event store."""
        return self.database.replace("{site}", str(site))


def load_settings(path: str | Path | None = None, **overrides) -> Settings:
    """Read a settings file; keyword overrides (None means 'not given') win over the file."""
    settings_path = Path(path) if path else DEFAULT_SETTINGS
    with open(settings_path, "rb") as f:
        raw = tomllib.load(f)
    sites = raw.get("sites", {})
    event = raw.get("event", {})
    storage = raw.get("storage", {})
    data_dir = Path(storage.get("data_dir", "data"))
    if not data_dir.is_absolute():
        data_dir = Path.cwd() / data_dir
    protocol_fields = ProtocolSettings.__dataclass_fields__
    protocol = ProtocolSettings(
        **{k: v for k, v in raw.get("protocol", {}).items() if k in protocol_fields}
    )
    tls_table = raw.get("tls", {})
    tls = TlsSettings(**{name: _path_beside(settings_path, tls_table.get(name))
                         for name in ("cert", "key", "ca")})
    capacity_fields = CapacitySettings.__dataclass_fields__
    capacity = CapacitySettings(
        **{k: v for k, v in raw.get("capacity", {}).items() if k in capacity_fields}
    )
    log_format = str(raw.get("logging", {}).get("format", "text"))
    settings = Settings(
        site_count=int(sites.get("count", 4)),
        base_port=int(sites.get("base_port", 8000)),
        host=str(sites.get("host", "127.0.0.1")),
        urls=tuple(sites.get("urls", ())),
        public_urls=tuple(sites.get("public_urls", ())),
        cookie_domain=sites.get("cookie_domain") or None,
        tls=tls,
        secret=str(sites.get("secret", Settings.secret)),
        cookie_secret=str(sites.get("cookie_secret", Settings.cookie_secret)),
        max_contributors=int(event.get("max_contributors", 10)),
        voting_period_s=float(event.get("voting_period_s", 90)),
        max_photo_mb=float(event.get("max_photo_mb", 25)),
        max_photo_pixels=int(event.get("max_photo_pixels", 50_000_000)),
        data_dir=data_dir,
        database=str(storage.get("database", "sqlite")),
        protocol=protocol,
        capacity=capacity,
        log_format=log_format,
    )
    given = {k: v for k, v in overrides.items() if v is not None}
    if "data_dir" in given:
        given["data_dir"] = Path(given["data_dir"]).absolute()
    settings = replace(settings, **given)
    if settings.log_format not in LOG_FORMATS:
        raise ValueError(f"logging.format must be one of {', '.join(LOG_FORMATS)}, "
                         f"not {settings.log_format!r}")
    check(settings)
    return settings


def _path_beside(settings_path: Path, value: str | None) -> str | None:
    """A relative path in the settings file is relative to the file's own folder."""
    if not value:
        return None
    path = Path(value)
    return str(path if path.is_absolute() else settings_path.resolve().parent / path)
