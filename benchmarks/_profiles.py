"""The sites' profilers, for a benchmark's `--profile`: run inside each site
(benchmarks/profile_site.py: wall or CPU time) or sampled from outside by py-spy
(benchmarks/gil_profile.py: interpreter time, every thread)."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path


class SiteProfiles:
    """Sites run under benchmarks/profile_site.py: `env` makes the launcher do it, `start`
    begins the count (so start-up is left out), `show` prints each site's profile."""

    def __init__(self, mode: str):
        self.mode = mode
        self.dir = Path(tempfile.mkdtemp(prefix="bench-profile-"))
        self.env = {"PHOTO_SITE_MODULE": "benchmarks.profile_site", "BENCH_PROFILE_DIR": str(self.dir),
                    "BENCH_PROFILE_MODE": mode}

    includes_stop = True  # a profile inside a site ends with the site: its stop is in it

    def start(self, sites) -> None:  # _harness.Sites
        for k in range(sites.count):
            sites.process(k).send_signal(signal.SIGUSR1)

    def finish(self) -> None:
        """The load is over (the profiles end when the sites stop)."""

    def show(self, over: str, count: int = 4) -> None:
        """Print every site's profile (`over`: what ran meanwhile), then remove them."""
        for k in range(count):
            report = self.dir / f"site-{k}.txt"
            print(f"\n== {self.mode} profile of site {k} over {over}:")
            print(report.read_text() if report.exists() else "(no profile written)")
        keep = os.environ.get("BENCH_KEEP_PSTATS")  # a folder: keep the cpu profiles for pstats
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            for stats in self.dir.glob("*.pstats"):
                shutil.copy(stats, Path(keep) / stats.name)
        shutil.rmtree(self.dir, ignore_errors=True)


PROFILE_MODES = ("wall", "cpu", "gil", "spy")


PROFILE_HELP = ("wall, cpu: run every site under benchmarks/profile_site.py (the figures are then not "
                "comparable); gil, spy: sample every site from outside with py-spy "
                "(benchmarks/gil_profile.py); print the profiles")


def site_profiles(mode: str | None):
    """The profiler of a benchmark's `--profile` (PROFILE_MODES), or None."""
    if mode in ("gil", "spy"):
        from gil_profile import GilProfiles

        return GilProfiles(mode)
    return SiteProfiles(mode) if mode else None
