"""Shared by the benchmarks: scratch sites, local PostgreSQL servers, load generators, tables.
(The machine's weather is benchmarks/_weather.py; the sites' profilers benchmarks/_profiles.py.)

Nothing here changes the service: sites are started as the launcher starts them (one process
each, `python -m web.site`), on free ports of 127.0.0.1, with a copy of settings.toml in a
scratch folder, and stopped (and their files removed) at the end.
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from tests.images import photo_jpeg  # noqa: E402,F401  (photo-like test content, one definition)
import psutil  # noqa: E402
from PIL import Image  # noqa: E402

from web.identity import COOKIE_NAME, cookie_value  # noqa: E402

READY_TIMEOUT_S = 90.0


# --- figures and tables ---------------------------------------------------------------------------
def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=1000, method="inclusive")[int(q * 10) - 1]


def p50_p99_ms(samples: list[float]) -> tuple[float, float]:
    return statistics.median(samples) * 1000 if samples else float("nan"), percentile(samples, 99.0) * 1000


def table(header: list[str], rows: list[list], aligns: str | None = None) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    aligns = aligns or "<" + ">" * (len(header) - 1)
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) if a == "<" else c.rjust(w) for c, w, a in zip(row, widths, aligns)))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --- ports and settings ---------------------------------------------------------------------------
def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base_port(count: int) -> int:
    """p..p+count-1 free, below the ephemeral range (outgoing connections cannot take them)."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_low = int(f.read().split()[0])
    low = max(1024, ephemeral_low - 12000)
    for _ in range(500):
        base = random.randrange(low, ephemeral_low - count)
        if all(_port_free(base + k) for k in range(count)):
            return base
    raise SystemExit("no free port range found")


def settings_copy(scratch: Path, database: str = "sqlite", **protocol) -> Path:
    """settings.toml with another event store (and protocol values), in the scratch folder."""
    text = (ROOT / "settings.toml").read_text()
    text, n = re.subn(r'(?m)^database\s*=.*$', f'database = "{database}"', text)
    if n != 1:
        raise SystemExit("settings.toml has no [storage] database line to override")
    for key, value in protocol.items():
        text, n = re.subn(rf"(?m)^{key}\s*=.*$", f"{key} = {value}", text)
        if n != 1:
            raise SystemExit(f"settings.toml has no {key} line to override")
    path = scratch / "settings.toml"
    path.write_text(text)
    return path


def cookie_secret(settings_path: Path) -> str:
    import tomllib

    return tomllib.loads(settings_path.read_text())["sites"]["cookie_secret"]


# --- sites ----------------------------------------------------------------------------------------
class Sites:
    """N sites started by launcher.py on a scratch data directory; a site can be killed and
    started again on its own (`python -m web.site`, what `launcher.py --only K` runs)."""

    def __init__(self, count: int = 4, database: str = "sqlite", scratch: Path | None = None,
                 keep: bool = False, env: dict | None = None, root: Path = ROOT, settings: dict | None = None):
        self.env = {**os.environ, **(env or {})}
        self.root = root  # the checkout whose code the sites run (bench_ab.py compares two)
        self.count = count
        self.scratch = Path(scratch or tempfile.mkdtemp(prefix="bench-sites-"))
        self.data_dir = self.scratch / "data"
        self.settings_path = settings_copy(self.scratch, database, **(settings or {}))
        self.base_port = free_base_port(count)
        self.urls = [f"http://127.0.0.1:{self.base_port + k}" for k in range(count)]
        self.keep = keep
        self.launcher: subprocess.Popen | None = None
        self.restarted: dict[int, subprocess.Popen] = {}

    def start(self) -> "Sites":
        self.launcher = subprocess.Popen(
            [sys.executable, "launcher.py", "--sites", str(self.count), "--base-port", str(self.base_port),
             "--data-dir", str(self.data_dir), "--settings", str(self.settings_path)],
            cwd=self.root, stdout=subprocess.DEVNULL, stderr=open(self.scratch / "launcher.err", "ab"),
            env=self.env,
        )
        deadline = time.monotonic() + READY_TIMEOUT_S
        for k in range(self.count):
            self.wait_ready(k, deadline)
        return self

    def is_ready(self, k: int) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(self.urls[k] + "/api/status", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def wait_ready(self, k: int, deadline: float, poll_s: float = 0.05) -> None:
        while not self.is_ready(k):
            if self.launcher is not None and self.launcher.poll() is not None and k not in self.restarted:
                raise SystemExit(f"the launcher exited ({self.launcher.returncode}): "
                                 f"{(self.scratch / 'launcher.err').read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise SystemExit(f"site {k} not ready; log tail:\n{self.log_tail(k)}")
            time.sleep(poll_s)

    def log_tail(self, k: int, chars: int = 3000) -> str:
        try:
            return (self.data_dir / f"site-{k}" / "site.log").read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def process(self, k: int) -> psutil.Process:
        if k in self.restarted:
            return psutil.Process(self.restarted[k].pid)
        for child in psutil.Process(self.launcher.pid).children():
            cmd = child.cmdline()
            if "--site" in cmd and cmd[cmd.index("--site") + 1] == str(k):
                return child
        raise SystemExit(f"site {k} has no process")

    def resources(self, k: int) -> tuple[float, int]:
        """(resident MiB, threads) of site k's process."""
        p = self.process(k)
        return p.memory_info().rss / 2**20, p.num_threads()

    def stop_site(self, k: int, sig: int) -> float:
        """Send sig to site k; seconds until it exited."""
        p = self.process(k)
        started = time.perf_counter()
        p.send_signal(sig)
        deadline = started + 60
        while True:  # gone, or a zombie its parent (the launcher) has yet to reap
            try:
                if p.status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            if time.perf_counter() > deadline:
                raise SystemExit(f"site {k} still running 60 s after {sig}")
            time.sleep(0.005)
        if k in self.restarted:
            self.restarted.pop(k).wait()
        return time.perf_counter() - started

    def start_site(self, k: int) -> float:
        """Start site k alone, as `launcher.py --only K` does; seconds until /api/status is 200."""
        log = open(self.data_dir / f"site-{k}" / "site.log", "ab")
        started = time.perf_counter()
        self.restarted[k] = subprocess.Popen(
            [sys.executable, "-m", "web.site", "--site", str(k), "--sites", str(self.count),
             "--base-port", str(self.base_port), "--data-dir", str(self.data_dir),
             "--settings", str(self.settings_path)],
            cwd=self.root, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, process_group=0)
        self.wait_ready(k, time.monotonic() + READY_TIMEOUT_S, poll_s=0.01)
        return time.perf_counter() - started

    def stop(self) -> None:
        for proc in self.restarted.values():
            if proc.poll() is None:
                proc.terminate()
        if self.launcher is not None and self.launcher.poll() is None:
            self.launcher.send_signal(signal.SIGTERM)
            try:
                self.launcher.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.launcher.kill()
        for proc in self.restarted.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if not self.keep:
            shutil.rmtree(self.scratch, ignore_errors=True)


@contextmanager
def running_sites(count: int = 4, database: str = "sqlite", keep: bool = False, env: dict | None = None):
    sites = Sites(count, database, keep=keep, env=env)
    try:
        yield sites.start()
    finally:
        sites.stop()


# --- PostgreSQL -------------------------------------------------------------------------------
def postgres_server(**options):
    """tests.postgres.PostgresServer, started with extra server options (-c name=value)."""
    from tests.postgres import PostgresServer

    class Server(PostgresServer):
        def start(self):
            self.root.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                shutil.chown(self.root, "postgres")
            self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")
            extra = " ".join(f"-c {k}={v}" for k, v in options.items())
            opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=on {extra}"
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts,
                      "-l", str(self.root / "server.log"), "-w", "start")
            return self

    return Server().start()


# --- HTTP clients -----------------------------------------------------------------------------
def mint_cookie(secret: str) -> str:
    """A user's identity cookie, as a site would issue it on the first request."""
    return f"{COOKIE_NAME}={cookie_value(secret, uuid.uuid4().hex)}"


def new_session(limit: int = 8) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, force_close=False),
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=120),
    )


def multipart(jpeg: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"p.jpg\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + jpeg + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


async def post_json(session, url: str, body: dict, cookie: str | None = None) -> tuple[int, dict]:
    import json

    headers = {"Content-Type": "application/json"}
    if cookie:
        headers["Cookie"] = cookie
    async with session.post(url, data=json.dumps(body).encode(), headers=headers) as r:
        return r.status, await r.json(content_type=None)


async def upload(session, url: str, event_id: str, jpeg: bytes, cookie: str) -> tuple[int, dict]:
    body, content_type = multipart(jpeg)
    headers = {"Content-Type": content_type, "Cookie": cookie}
    async with session.post(f"{url}/api/events/{event_id}/photos", data=body, headers=headers) as r:
        return r.status, await r.json(content_type=None)


async def get(session, url: str, cookie: str | None = None) -> tuple[int, bytes]:
    headers = {"Cookie": cookie} if cookie else {}
    async with session.get(url, headers=headers) as r:
        return r.status, await r.read()


async def closed_loop(clients: int, duration_s: float, one_request, warmup_s: float = 1.0):
    """`clients` coroutines each calling `await one_request(client_no)` back to back for
    duration_s (after warmup_s not counted). one_request returns a label (or raises); returns
    (list of (label, seconds) measured, errors by text, seconds measured, requests done in all,
    warm-up included)."""
    samples: list[tuple[str, float]] = []
    done = [0]
    errors: dict[str, int] = {}
    start = time.perf_counter()
    measure_from = start + warmup_s
    stop_at = measure_from + duration_s

    async def client(n: int) -> None:
        while True:
            began = time.perf_counter()
            if began >= stop_at:
                return
            try:
                label = await one_request(n)
                ended = time.perf_counter()
                done[0] += 1
                if began >= measure_from:
                    samples.append((label, ended - began))
            except Exception as e:  # counted, not fatal: a benchmark reports what failed
                if began >= measure_from:
                    key = str(e)[:120]
                    errors[key] = errors.get(key, 0) + 1

    await asyncio.gather(*(client(n) for n in range(clients)))
    return samples, errors, time.perf_counter() - measure_from, done[0]


class HttpStatusError(Exception):
    pass


def expect(status: int, body, wanted: int | tuple, what: str):
    ok = status in wanted if isinstance(wanted, tuple) else status == wanted
    if not ok:
        raise HttpStatusError(f"{what}: HTTP {status} {str(body)[:200]}")
    return body


def wait_until_ready(url: str, deadline: float) -> None:
    """Until the site at `url` answers GET /api/status with 200 (SystemExit at `deadline`)."""
    import urllib.request

    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/api/status", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not become ready")


# --- photos -----------------------------------------------------------------------------------
def tiny_jpeg(seed: int) -> bytes:
    """A small distinct photo (64x48): distinct content, so distinct files at every site."""
    rng = random.Random(seed)
    image = Image.new("RGB", (64, 48), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    for _ in range(6):
        x, y = rng.randrange(64), rng.randrange(48)
        image.putpixel((x, y), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


# --- what the sites and servers spent --------------------------------------------------------
async def collector_seconds(session, sites: "Sites") -> float | None:
    """CPU seconds the sites' garbage collectors have spent so far (their /metrics), or None
    where a site does not count it (code from before session 10)."""
    total = 0.0
    for url in sites.urls:
        async with session.get(f"{url}/metrics") as r:
            text = await r.text()
        values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                  if line.startswith("photos_gc_cpu_seconds_total{")]
        if not values:
            return None
        total += sum(values)
    return total


def cpu_seconds(processes) -> float:
    """user + system CPU seconds of these processes (those gone are skipped)."""
    total = 0.0
    for p in processes:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def postgres_processes(server) -> list:
    """The postmaster of a tests.postgres server and every process it runs now."""
    pid = int((server.data / "postmaster.pid").read_text().split()[0])
    postmaster = psutil.Process(pid)
    return [postmaster] + postmaster.children(recursive=True)


# --- in the background ------------------------------------------------------------------------
class Background:
    """Calls `sample()` every `interval` seconds in a thread, for the length of a with block."""

    interval = 1.0

    def __init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


