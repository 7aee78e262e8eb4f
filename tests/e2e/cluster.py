"""End-to-end harness: real site processes on free local ports, and a stdlib HTTP client.

    cluster = Cluster(tmp_path, sites=4, settings_overrides={"event": {"voting_period_s": 2}})
    cluster.start_all()                              # every site started and ready
    alice = Client(cluster.url)                      # one user: one cookie jar for all sites
    status, body = alice.post_json(0, "/api/events", {"title": "Picnic"})
    cluster.kill(2); cluster.start(2); cluster.wait_ready(2)

PHOTO_SITE_MODULE names another module to run instead of web.site, as for launcher.py.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import random
import socket
import ssl
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

from web.settings import load_settings
from web.tls import client_context

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEST_SETTINGS = Path(__file__).with_name("settings-test.toml")
STOP_GRACE_S = 10.0


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05,
               message: str = "condition not met") -> Any:
    """Poll until predicate() is truthy and return its value; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} (waited {timeout} s; last value: {value!r})")
        time.sleep(interval)


def free_base_port(count: int, attempts: int = 200) -> int:
    """A port p with p..p+count-1 all free, below the kernel's ephemeral range: the sites'
    own outgoing connections take ephemeral ports and could steal a killed site's port."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_low = int(f.read().split()[0])
    low = max(1024, ephemeral_low - 12000)
    for _ in range(attempts):
        base = random.randrange(low, ephemeral_low - count)
        if all(_port_is_free(base + k) for k in range(count)):
            return base
    raise RuntimeError(f"no {count} consecutive free ports in {low}..{ephemeral_low}")


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _toml(document: Mapping[str, Mapping[str, Any]]) -> str:
    """Enough TOML for a settings file: tables of strings, numbers, booleans and lists."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(item) for item in v) + "]"
        return json.dumps(v if isinstance(v, (int, float)) else str(v))
    lines = []
    for table, values in document.items():
        lines += [f"[{table}]", *(f"{key} = {value(v)}" for key, v in values.items()), ""]
    return "\n".join(lines)


def _direct(context: ssl.SSLContext | None = None, *handlers) -> urllib.request.OpenerDirector:
    """Test traffic goes straight to the sites, never through a proxy named in the environment;
    over TLS it checks the sites' certificates against `context`."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                       urllib.request.HTTPSHandler(context=context), *handlers)


def _status_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with _direct(context).open(url + "/api/status", timeout=1) as response:
            return response.status == 200
    except OSError:  # refused, reset, timed out, or an HTTP error status
        return False


class Cluster:
    """N real site processes sharing one settings file under tmp_path; logs in tmp_path/logs.

    settings_overrides: {"table": {"key": value}} merged over settings-test.toml.
    """

    def __init__(self, tmp_path: Path, sites: int = 4,
                 settings_overrides: Mapping[str, Mapping[str, Any]] | None = None):
        self.root = Path(tmp_path)
        self.data_dir = self.root / "data"
        self.log_dir = self.root / "logs"
        self.settings_path = self.root / "settings.toml"
        self.sites = tuple(range(sites))
        self.module = os.environ.get("PHOTO_SITE_MODULE", "web.site")
        document = tomllib.loads(TEST_SETTINGS.read_text())
        document["sites"].update(base_port=free_base_port(sites), count=sites)
        document["storage"]["data_dir"] = str(self.data_dir)
        for table, values in (settings_overrides or {}).items():
            document.setdefault(table, {}).update(values)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.settings_path.write_text(_toml(document))
        self.settings = load_settings(self.settings_path)
        self.ssl_context = client_context(self.settings, 0)  # None without [tls]
        self.processes: dict[int, subprocess.Popen] = {}

    def url(self, k: int) -> str:
        return self.settings.site_url(k)

    def log_path(self, k: int) -> Path:
        return self.log_dir / f"site-{k}.log"

    def log_tail(self, k: int, lines: int = 40) -> str:
        if not self.log_path(k).exists():
            return "(no log)"
        return "\n".join(self.log_path(k).read_text(errors="replace").splitlines()[-lines:])

    def logs(self, lines: int = 40) -> str:
        return "\n".join(f"--- site {k} ({self.url(k)}) ---\n{self.log_tail(k, lines)}"
                         for k in self.sites)

    def running(self, k: int) -> bool:
        return k in self.processes and self.processes[k].poll() is None

    def pid(self, k: int) -> int:
        return self.processes[k].pid

    def wrapper(self, k: int) -> list[str]:
        """What site k's command runs under (nothing here; a network namespace elsewhere)."""
        return []

    def start(self, k: int, env: Mapping[str, str] | None = None) -> subprocess.Popen:
        """Start site k (not waiting for it); env adds to this process's environment."""
        if self.running(k):
            raise RuntimeError(f"site {k} is already running")
        command = [*self.wrapper(k), sys.executable, "-m", self.module, "--site", str(k),
                   "--sites", str(len(self.sites)), "--settings", str(self.settings_path),
                   "--data-dir", str(self.data_dir)]
        with open(self.log_path(k), "ab") as log:
            log.write(f"=== starting site {k} (extra env: {dict(env or {})}) ===\n".encode())
            log.flush()
            self.processes[k] = subprocess.Popen(
                command, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        return self.processes[k]

    def start_all(self, wait: bool = True) -> None:
        for k in self.sites:
            self.start(k)
        if wait:
            for k in self.sites:
                self.wait_ready(k)

    def wait_ready(self, k: int, timeout: float = 20) -> None:
        """Return once site k answers GET /api/status with 200."""
        deadline = time.monotonic() + timeout
        while not _status_ok(self.url(k), self.ssl_context):
            process = self.processes[k]
            if process.poll() is not None:
                raise RuntimeError(f"site {k} exited with {process.returncode} before it was "
                                   f"ready:\n{self.log_tail(k)}")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"site {k} not ready after {timeout} s:\n{self.log_tail(k)}")
            time.sleep(0.05)

    def wait_exit(self, k: int, timeout: float) -> int:
        """Wait for site k to exit by itself (a crash point); -9 means it SIGKILLed itself."""
        try:
            return self.processes[k].wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"site {k} still running after {timeout} s:\n"
                               f"{self.log_tail(k)}") from None

    def kill(self, k: int) -> int:
        """SIGKILL site k (a crash) and reap it."""
        self.processes[k].kill()
        return self.processes[k].wait()

    def terminate(self, k: int, timeout: float = STOP_GRACE_S) -> int:
        """SIGTERM site k and wait for it; a site that ignores SIGTERM is killed and fails."""
        process = self.processes[k]
        process.terminate()
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise AssertionError(f"site {k} ignored SIGTERM for {timeout} s:\n"
                                 f"{self.log_tail(k)}") from None

    def stop_all(self) -> None:
        """Stop every site still running (SIGTERM, then SIGKILL after a grace period)."""
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_all()


@dataclass(frozen=True)
class Response:
    status: int
    headers: Message
    body: bytes

    def parsed(self) -> Any:
        """The body as JSON, or as text when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return self.body.decode(errors="replace")


class Client:
    """One user: a cookie jar shared by every site (cookies are per host, not per port).

    Answers with any status come back as values; only a failed connection raises (URLError).
    """

    def __init__(self, base_url: Callable[[int], str], timeout: float = 30,
                 ssl_context: ssl.SSLContext | None = None):
        self.base_url = base_url
        self.timeout = timeout
        self.cookies = http.cookiejar.CookieJar()
        self._opener = _direct(ssl_context, urllib.request.HTTPCookieProcessor(self.cookies))

    def request(self, site: int, method: str, path: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> Response:
        all_headers = dict(headers or {})
        if method not in ("GET", "HEAD"):
            # What a browser sends with a same-origin form or fetch (CSRF checks look at it).
            all_headers.setdefault("Origin", self.base_url(site))
        request = urllib.request.Request(self.base_url(site) + path, data=body, method=method,
                                         headers=all_headers)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return Response(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            with error:
                return Response(error.code, error.headers, error.read())

    def get_json(self, site: int, path: str) -> tuple[int, Any]:
        response = self.request(site, "GET", path)
        return response.status, response.parsed()

    def post_json(self, site: int, path: str, body: Any) -> tuple[int, Any]:
        response = self.request(site, "POST", path, json.dumps(body).encode(),
                                {"Content-Type": "application/json"})
        return response.status, response.parsed()

    def upload(self, site: int, event_id: str,
               files: list[tuple[str, bytes, str]]) -> tuple[int, Any]:
        """POST (file name, data, content type) triples as multipart parts named photo."""
        boundary = uuid.uuid4().hex
        chunks = []
        for name, data, content_type in files:
            chunks += [f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; "
                       f"filename=\"{name}\"\r\nContent-Type: {content_type}\r\n\r\n".encode(),
                       data, b"\r\n"]
        chunks.append(f"--{boundary}--\r\n".encode())
        response = self.request(site, "POST", f"/api/events/{event_id}/photos", b"".join(chunks),
                                {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        return response.status, response.parsed()

    def get_bytes(self, site: int, path: str) -> tuple[int, bytes]:
        response = self.request(site, "GET", path)
        return response.status, response.body
