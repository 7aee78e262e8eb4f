"""launcher.py as a person runs it: a table once every site is ready, deaths reported, clean stop."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.error

import pytest

from tests.e2e.cluster import PROJECT_ROOT, TEST_SETTINGS, Client, free_base_port, wait_until

pytestmark = pytest.mark.e2e

TABLE_ROW = re.compile(r"^(\d+)\s+(https?://\S+)\s+(\d+)$")
START_TIMEOUT_S = 45  # the launcher's own readiness deadline is 30 s


class LauncherRun:
    """launcher.py in a subprocess; a thread collects its stdout and stderr line by line."""

    def __init__(self, tmp_path, sites: int, *args: str, base_port: int, env: dict | None):
        self.base_port = base_port
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "launcher.py", "--sites", str(sites), "--settings", str(TEST_SETTINGS),
             "--base-port", str(self.base_port), "--data-dir", str(tmp_path / "data"), *args],
            cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})})
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.client = Client(lambda k: f"http://127.0.0.1:{self.base_port + k}")

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def table(self) -> dict[int, tuple[str, int]]:
        """Site number -> (url, pid), from the printed table."""
        rows = (TABLE_ROW.match(line.strip()) for line in list(self.lines))
        return {int(m[1]): (m[2], int(m[3])) for m in rows if m}

    def wait_for_table(self) -> dict[int, tuple[str, int]]:
        wait_until(lambda: "Ready" in self.output() or self.process.poll() is not None,
                   START_TIMEOUT_S, message="the launcher printed no table")
        assert self.process.poll() is None, f"the launcher exited:\n{self.output()}"
        return self.table()

    def answers(self, k: int) -> bool:
        try:
            status, body = self.client.get_json(k, "/api/status")
        except urllib.error.URLError:
            return False
        return status == 200 and body["site"] == k

    def close(self) -> None:
        """Leave nothing behind, whatever the test did: the launcher, then its sites."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for _, pid in self.table().values():
            if process_exists(pid):
                os.kill(pid, signal.SIGKILL)
        self.reader.join(timeout=5)
        self.process.stdout.close()


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def launch(tmp_path):
    runs: list[LauncherRun] = []

    def start(sites: int, *args: str, base_port: int | None = None,
              env: dict | None = None) -> LauncherRun:
        base_port = base_port or free_base_port(sites)
        runs.append(LauncherRun(tmp_path, sites, *args, base_port=base_port, env=env))
        return runs[-1]

    yield start
    for run in runs:
        run.close()


def test_the_launcher_starts_every_site_reports_a_death_and_stops_the_rest_on_sigterm(launch):
    run = launch(3)
    table = run.wait_for_table()
    assert table.keys() == {0, 1, 2}
    for k, (url, _) in table.items():
        assert url == f"http://127.0.0.1:{run.base_port + k}"
        assert run.answers(k)

    os.kill(table[1][1], signal.SIGKILL)
    wait_until(lambda: re.search(r"site 1\b.*SIGKILL", run.output()), 10,
               message="the launcher did not report site 1's death")
    assert run.answers(0) and run.answers(2)
    assert run.process.poll() is None

    run.process.send_signal(signal.SIGTERM)
    assert run.process.wait(timeout=30) == 0, run.output()
    assert not any(process_exists(pid) for _, pid in table.values())
    assert not any(run.answers(k) for k in table)


def test_only_starts_that_one_site_and_the_launcher_exits_non_zero_once_it_dies(launch):
    run = launch(3, "--only", "1")
    table = run.wait_for_table()
    assert list(table) == [1]
    assert table[1][0] == f"http://127.0.0.1:{run.base_port + 1}"
    assert run.answers(1)
    assert not run.answers(0) and not run.answers(2)

    os.kill(table[1][1], signal.SIGKILL)
    assert run.process.wait(timeout=10) != 0
    assert re.search(r"site 1\b.*SIGKILL", run.output())


def test_a_site_that_cannot_start_is_reported_with_its_output_and_a_non_zero_exit(launch):
    run = launch(2, env={"PHOTO_SITE_MODULE": "tests.e2e.no_such_site_module"})
    assert run.process.wait(timeout=START_TIMEOUT_S) != 0
    run.reader.join(timeout=5)
    assert "No module named" in run.output()
    assert not run.table()
    assert not run.answers(0) and not run.answers(1)


def test_a_taken_port_is_reported_before_any_site_starts(launch):
    base_port = free_base_port(2)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", base_port + 1))
        squatter.listen()
        run = launch(2, base_port=base_port)
        assert run.process.wait(timeout=START_TIMEOUT_S) != 0
    run.reader.join(timeout=5)
    assert f"already in use: {base_port + 1}" in run.output()
    assert not run.table()


def settings_file(tmp_path, sites_table: str) -> str:
    path = tmp_path / "my-settings.toml"
    path.write_text(f"[sites]\n{sites_table}\n")
    return str(path)


def test_the_shipped_example_secrets_off_loopback_are_refused_naming_the_keys(launch, tmp_path):
    path = settings_file(tmp_path, 'host = "0.0.0.0"\n'
                                   'secret = "change-me-site-to-site-secret"\n'
                                   'cookie_secret = "change-me-cookie-secret"')
    run = launch(2, "--settings", path)
    assert run.process.wait(timeout=START_TIMEOUT_S) != 0
    run.reader.join(timeout=5)
    assert "sites.secret" in run.output() and "sites.cookie_secret" in run.output()
    assert not run.table()
    assert not (tmp_path / "data").exists()  # refused before any site started


def test_a_loopback_bind_that_cannot_serve_the_sites_urls_is_refused_in_words(launch, tmp_path):
    path = settings_file(tmp_path, 'host = "127.0.0.1"\n'
                                   'urls = ["http://dc0.example:8000", "http://dc1.example:8000"]')
    run = launch(2, "--settings", path)
    assert run.process.wait(timeout=START_TIMEOUT_S) != 0
    run.reader.join(timeout=5)
    assert "sites.host = '127.0.0.1' is a loopback address" in run.output()
    assert "sites.urls[0] = 'http://dc0.example:8000'" in run.output()
    assert "not ready" not in run.output()


def test_the_launcher_starts_sites_with_tls_and_checks_them_against_the_ca(launch, tmp_path):
    base_port = free_base_port(2)
    hosts = f"127.0.0.1:{base_port},127.0.0.1:{base_port + 1}"
    subprocess.run([sys.executable, "-m", "web.deployment", "--hosts", hosts, "--out",
                    str(tmp_path / "deploy")], cwd=PROJECT_ROOT, check=True, timeout=60)
    path = tmp_path / "deploy" / "settings.toml"
    path.write_text(path.read_text().replace('host = "0.0.0.0"', 'host = "127.0.0.1"'))
    run = launch(2, "--settings", str(path))
    table = run.wait_for_table()
    assert [url for url, _ in table.values()] == [f"https://127.0.0.1:{base_port + k}"
                                                  for k in range(2)]
    run.process.send_signal(signal.SIGTERM)
    assert run.process.wait(timeout=30) == 0, run.output()
