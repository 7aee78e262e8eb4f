"""Start the sites of one deployment, one OS process each, and watch them.

    python launcher.py --sites N [--only K] [--settings F] [--base-port P] [--data-dir D]

Each site runs as `python -m web.site --site K --sites N ...` with the project root as its
working directory; its output is appended to DATA_DIR/site-K/site.log. Once every site answers
`GET /api/status` with 200 a table of site, URL and pid is printed. Ctrl-C or SIGTERM stops
every site (SIGTERM, then SIGKILL after a grace period) and exits 0. A site that dies later is
reported and not restarted (restart it with --only K); the launcher exits 1 when none is left.

The environment variable PHOTO_SITE_MODULE names another module to run instead of web.site
(tests point it at a stand-in); everything else in the environment is passed to the sites.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from web.settings import Settings, load_settings
from web.settings_rules import SettingsError
from web.tls import client_context

PROJECT_ROOT = Path(__file__).resolve().parent
READY_TIMEOUT_S = 30.0
STOP_GRACE_S = 10.0
POLL_S = 0.1


def _opener(settings: Settings, site: int) -> urllib.request.OpenerDirector:
    """Status checks go straight to the site, never through a proxy named in the environment,
    and over TLS check the site's certificate against tls.ca as its peers do."""
    https = urllib.request.HTTPSHandler(context=client_context(settings, site))
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), https)


class Site:
    """One site process, with its log file and where this run's output starts in it."""

    def __init__(self, number: int, settings: Settings, settings_path: Path | None):
        self.number = number
        self.url = settings.site_url(number)
        self.http = _opener(settings, number)
        self.log_path = settings.site_dir(number) / "site.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        command = [sys.executable, "-m", os.environ.get("PHOTO_SITE_MODULE", "web.site"),
                   "--site", str(number), "--sites", str(settings.site_count),
                   "--base-port", str(settings.base_port), "--data-dir", str(settings.data_dir)]
        if settings_path:
            command += ["--settings", str(settings_path)]
        with open(self.log_path, "ab") as log:
            # A process group of its own: Ctrl-C reaches only the launcher, which then stops
            # the sites in order instead of them all dying at once mid-request.
            self.process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT, process_group=0)

    def is_ready(self) -> bool:
        try:
            with self.http.open(self.url + "/api/status", timeout=1) as response:
                return response.status == 200
        except OSError:  # refused, reset, timed out, or an HTTP error status
            return False

    def log_tail(self, lines: int = 15) -> str:
        with open(self.log_path, "rb") as log:
            log.seek(self.log_start)
            text = log.read().decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:]) or "(no output)"

    def exit_reason(self) -> str:
        code = self.process.returncode
        if code is not None and code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exited with code {code}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Start the sites of a photo-session deployment.")
    parser.add_argument("--sites", type=int, help="number of sites (default: from the settings)")
    parser.add_argument("--only", type=int, metavar="K", help="start only site K of the topology")
    parser.add_argument("--settings", type=Path, help="settings file (default: settings.toml)")
    parser.add_argument("--base-port", type=int, help="site k listens on base port + k")
    parser.add_argument("--data-dir", type=Path, help="site k keeps its data in DATA_DIR/site-k")
    return parser.parse_args(argv)


def ports_in_use(settings: Settings, numbers: list[int]) -> list[int]:
    """Ports already taken: a stale site there would answer our status checks in its place."""
    taken = []
    for k in numbers:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the sites bind
            try:
                probe.bind((settings.host, settings.site_port(k)))
            except OSError:
                taken.append(settings.site_port(k))
    return taken


def wait_all_ready(sites: list[Site], stop: threading.Event) -> str | None:
    """None once every site is ready; otherwise why not (and stop is left as it was)."""
    pending = list(sites)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while pending and not stop.is_set():
        for site in list(pending):
            if site.process.poll() is not None:
                return f"site {site.number} {site.exit_reason()} while starting:\n{site.log_tail()}"
            if site.is_ready():
                pending.remove(site)
        if pending and time.monotonic() > deadline:
            site = pending[0]
            return (f"site {site.number} not ready after {READY_TIMEOUT_S:.0f} s "
                    f"(no 200 from {site.url}/api/status):\n{site.log_tail()}")
        stop.wait(POLL_S)
    return None


def stop_all(sites: list[Site]) -> None:
    for site in sites:
        if site.process.poll() is None:
            site.process.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for site in sites:
        try:
            site.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"site {site.number} ignored SIGTERM for {STOP_GRACE_S:.0f} s: killing it",
                  file=sys.stderr, flush=True)
            site.process.kill()
            site.process.wait()


def print_table(sites: list[Site]) -> None:
    print(f"{'site':<6}{'url':<32}pid")
    for site in sites:
        print(f"{site.number:<6}{site.url:<32}{site.process.pid}")
    print("Ready. Ctrl-C stops every site.", flush=True)


def watch(sites: list[Site], stop: threading.Event) -> int:
    """Report sites that die; return 0 when asked to stop, 1 when no site is left."""
    alive = list(sites)
    while not stop.wait(POLL_S):
        for site in [s for s in alive if s.process.poll() is not None]:
            alive.remove(site)
            print(f"site {site.number} (pid {site.process.pid}) {site.exit_reason()}; "
                  f"not restarted (log: {site.log_path})", file=sys.stderr, flush=True)
        if not alive:
            print("no site is left running", file=sys.stderr, flush=True)
            return 1
    print("stopping every site", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = load_settings(args.settings, site_count=args.sites, base_port=args.base_port,
                                 data_dir=args.data_dir)
    except SettingsError as error:
        print(f"refusing to start: {error}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as error:  # a missing file, or bad TOML (a ValueError)
        print(f"cannot read the settings: {error}", file=sys.stderr)
        return 2
    if args.only is not None and args.only not in settings.sites:
        print(f"--only {args.only}: no such site in a {settings.site_count}-site topology",
              file=sys.stderr)
        return 2
    numbers = [args.only] if args.only is not None else list(settings.sites)
    try:
        for k in numbers:
            client_context(settings, k)  # readiness is checked against tls.ca: it must load
    except (OSError, ssl.SSLError) as error:
        print(f"cannot load tls.ca ({settings.tls.path('ca', k)}): {error}", file=sys.stderr)
        return 2
    taken = ports_in_use(settings, numbers)
    if taken:
        print(f"port(s) already in use: {', '.join(map(str, taken))}", file=sys.stderr)
        return 1

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    settings_path = args.settings.resolve() if args.settings else None
    sites: list[Site] = []
    try:
        for k in numbers:
            sites.append(Site(k, settings, settings_path))
        failure = wait_all_ready(sites, stop)
        if failure:
            print(failure, file=sys.stderr, flush=True)
            return 1
        if not stop.is_set():
            print_table(sites)
        return watch(sites, stop)
    finally:
        stop_all(sites)


if __name__ == "__main__":
    sys.exit(main())
