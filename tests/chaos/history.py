"""The history of a run, Jepsen style: one JSON object per line.

Every client operation is an `invoke` followed by its completion from the same process:

    ok    it happened (2xx)
    fail  it definitely did not happen (4xx; 503, as the API promises nothing was done; a
          refused connection)
    info  unknown: a timeout, a reset connection, an unexpected 5xx

    {"index": 12, "time": 3.402, "wall": 1764170000.1, "process": 2, "type": "invoke",
     "f": "upload", "site": 1, "value": {"event_id": "...", "shas": ["..."]}}

The nemesis writes its steps as process "nemesis", type "info", f "start" / "end".
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OK, FAIL, INFO, INVOKE = "ok", "fail", "info", "invoke"


class History:
    """Appends records to a JSONL file (flushed per line) and keeps them in memory."""

    def __init__(self, path: Path):
        self.path = path
        self.records: list[dict] = []
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        self._file = open(path, "w", encoding="utf-8")

    def _append(self, record: dict) -> dict:
        with self._lock:
            record = {"index": len(self.records), "time": round(time.monotonic() - self._t0, 4),
                      "wall": time.time(), **record}
            self.records.append(record)
            self._file.write(json.dumps(record, sort_keys=True) + "\n")
            self._file.flush()
        return record

    def invoke(self, process: int, f: str, site: int, value: dict) -> dict:
        return self._append({"process": process, "type": INVOKE, "f": f, "site": site, "value": value})

    def complete(self, invocation: dict, outcome: str, value: dict) -> dict:
        return self._append({"process": invocation["process"], "type": outcome,
                             "f": invocation["f"], "site": invocation["site"], "value": value})

    def nemesis(self, phase: str, value: dict) -> dict:
        return self._append({"process": "nemesis", "type": INFO, "f": phase, "value": value})

    def close(self) -> None:
        with self._lock:
            self._file.close()


@dataclass(frozen=True)
class Op:
    """An invocation paired with its completion (`outcome` None: it never completed)."""

    process: int
    f: str
    site: int
    invoked: float  # harness clock, seconds
    invoked_wall: float
    value: dict
    outcome: str | None = None
    completed: float | None = None
    completed_wall: float | None = None
    result: dict = field(default_factory=dict)
    index: int = 0  # the invocation's index in the history

    def describe(self) -> str:
        end = f"{self.outcome} at {self.completed:.2f}s" if self.outcome else "never completed"
        detail = {k: v for k, v in self.result.items() if k in ("status", "error", "message", "round")}
        return (f"op #{self.index} (process {self.process}, {self.f} at site {self.site}, "
                f"invoked {self.invoked:.2f}s, {end}{', ' + json.dumps(detail) if detail else ''})")


def read_history(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def pair_ops(records: list[dict]) -> list[Op]:
    """Client operations in invocation order; a process has one operation open at a time."""
    open_ops: dict[Any, dict] = {}
    ops: dict[int, Op] = {}
    for r in records:
        if r["process"] == "nemesis":
            continue
        if r["type"] == INVOKE:
            open_ops[r["process"]] = r
            ops[r["index"]] = Op(r["process"], r["f"], r["site"], r["time"], r["wall"],
                                 r["value"], index=r["index"])
        else:
            inv = open_ops.pop(r["process"])
            op = ops[inv["index"]]
            ops[inv["index"]] = Op(op.process, op.f, op.site, op.invoked, op.invoked_wall, op.value,
                                   r["type"], r["time"], r["wall"], r["value"], op.index)
    return [ops[i] for i in sorted(ops)]


def nemesis_steps(records: list[dict]) -> list[dict]:
    return [r for r in records if r["process"] == "nemesis"]
