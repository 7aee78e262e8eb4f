"""The sites of a chaos run: real processes (tests.e2e.cluster) whose peers are reached through
the link proxies, and what the nemesis does to them: kill, arm a crash point, pause, resume."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.chaos.proxy import Proxies
from tests.e2e.cluster import Client, Cluster, _status_ok


class ChaosSites(Cluster):
    """A Cluster whose sites talk to each other only through `proxies` (one per directed link).

    Tracks what the nemesis did to each site, so healing knows what to undo.
    """

    def __init__(self, root: Path, sites: int,
                 settings_overrides: Mapping[str, Mapping[str, Any]] | None = None):
        super().__init__(root, sites, settings_overrides)
        self.proxies = self.make_proxies()
        self.armed: dict[int, str] = {}  # site -> crash point it was started with
        self.paused: set[int] = set()
        self.crashes_hit: list[tuple[int, str]] = []  # (site, point) that killed a site

    def client(self, timeout: float) -> Client:
        """A new person using these sites (localhost ports share cookies: one identity)."""
        return Client(self.url, timeout=timeout)

    def make_proxies(self) -> Proxies:
        return Proxies({k: self.settings.site_port(k) for k in self.sites})

    def start_proxies(self) -> None:
        self.proxies.start()

    def start(self, k: int, env: Mapping[str, str] | None = None):
        peer_env = {"SITE_PEER_URLS": json.dumps(self.proxies.peer_urls(k))}
        return super().start(k, {**peer_env, **(env or {})})

    def start_armed(self, k: int, point: str) -> None:
        """Crash, then come back with a crash point armed: the site dies when it reaches it."""
        self.crash(k)
        self.armed[k] = point
        self.start(k, {"SITE_CRASH_AT": point})

    def crash(self, k: int) -> None:
        """SIGKILL (a stopped process dies too) and reap; note whether an armed point fired."""
        if k in self.processes:
            process = self.processes[k]
            if process.poll() is not None and k in self.armed and process.returncode == -signal.SIGKILL:
                self.crashes_hit.append((k, self.armed[k]))
            if process.poll() is None:
                process.kill()
            process.wait()
        self.paused.discard(k)
        self.armed.pop(k, None)

    def restart_clean(self, k: int) -> None:
        self.crash(k)
        self.start(k)

    def pause(self, k: int) -> None:
        if self.running(k):
            os.kill(self.pid(k), signal.SIGSTOP)
            self.paused.add(k)

    def resume(self, k: int) -> None:
        if k in self.paused and self.running(k):
            os.kill(self.pid(k), signal.SIGCONT)
        self.paused.discard(k)

    def heal(self, timeout: float = 30.0) -> dict[int, str]:
        """Every link healed, every site resumed, dead or armed sites restarted clean; wait
        until each answers. Returns {site: problem} for sites that would not come back."""
        self.proxies.heal_all()
        for k in self.sites:
            self.resume(k)
            if k in self.armed or not self.running(k):
                self.restart_clean(k)
        problems = {}
        deadline = time.monotonic() + timeout
        for k in self.sites:
            while not _status_ok(self.url(k)):
                if not self.running(k):
                    problems[k] = f"exited with {self.processes[k].returncode}"
                    break
                if time.monotonic() > deadline:
                    problems[k] = f"not ready {timeout} s after healing"
                    break
                time.sleep(0.1)
        return problems

    def stop_all(self) -> None:
        for k in list(self.paused):
            self.resume(k)
        super().stop_all()

    def close(self) -> None:
        self.stop_all()
        self.proxies.stop()
