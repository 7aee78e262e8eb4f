"""Snapshots of the aggregates, so that rebuilding one stays cheap however long its log grows.

Replaying a record costs ~50 us (the library's checks and our fold), so an event with 100 photos
(~200 records) took ~10-16 ms to rebuild, at every site, whenever its actor started or a read
missed the cache. Every SNAPSHOT_EVERY records the store also writes the aggregate's state; a
rebuild then starts from the latest snapshot and replays at most that many records.

The states are immutable dataclasses holding tuples, frozensets and mappings, which JSON cannot
keep apart, so they are encoded here with their types. A snapshot is an optimisation: one that
cannot be written is logged and skipped, and one that cannot be read (say, written by a version
of the code with other fields) is ignored in favour of replaying the whole log.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding

from domain import coordinator, event_state, round_master
from domain.aggregates import RECORD_TYPES

SNAPSHOT_EVERY = 32  # records between snapshots of one aggregate
FORMAT = 3  # bump when a state class changes shape: older snapshots are then not read

STATE_TYPES: dict[str, type] = {
    **RECORD_TYPES,
    **{cls.__name__: cls for cls in (
        event_state.EventState, event_state.Round, event_state.RoundOutcome,
        coordinator.CoordinatorState, coordinator.Txn, round_master.ActiveRound,
    )},
}


class SnapshotFormatError(ValueError):
    """A snapshot that this code cannot read."""


def encode_state(obj: Any) -> Any:
    """JSON-ready data that keeps dataclasses, tuples, frozensets and mappings apart."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        name = type(obj).__name__
        if STATE_TYPES.get(name) is not type(obj):
            raise TypeError(f"{name} is not a state type")
        return {"@": name, **{f.name: encode_state(getattr(obj, f.name)) for f in dataclasses.fields(obj)}}
    if isinstance(obj, tuple):
        return {"@tuple": [encode_state(x) for x in obj]}
    if isinstance(obj, frozenset):
        return {"@frozenset": sorted(encode_state(x) for x in obj)}
    if isinstance(obj, Mapping):
        return {"@map": [[encode_state(k), encode_state(v)] for k, v in obj.items()]}
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise TypeError(f"cannot snapshot a {type(obj).__name__}")


def decode_state(data: Any) -> Any:
    """The inverse of encode_state; SnapshotFormatError for anything it did not make."""
    if isinstance(data, dict):
        if "@tuple" in data:
            return tuple(decode_state(x) for x in data["@tuple"])
        if "@frozenset" in data:
            return frozenset(decode_state(x) for x in data["@frozenset"])
        if "@map" in data:
            return {decode_state(k): decode_state(v) for k, v in data["@map"]}
        cls = STATE_TYPES.get(data.get("@"))
        if cls is None:
            raise SnapshotFormatError(f"unknown type {data.get('@')!r}")
        fields = {k: decode_state(v) for k, v in data.items() if k != "@"}
        try:
            return cls(**fields)
        except TypeError as e:  # fields added or removed since the snapshot was written
            raise SnapshotFormatError(str(e)) from None
    if isinstance(data, list):
        raise SnapshotFormatError("a bare list")
    return data


class _StateTranscoding(Transcoding):
    def __init__(self, cls: type):
        self.type = cls
        self.name = f"photo_sessions.{cls.__name__}.v{FORMAT}"

    def encode(self, obj: Any) -> Any:
        return encode_state(obj)

    def decode(self, data: Any) -> Any:
        return decode_state(data)


def register_state_transcodings(transcoder: JSONTranscoder) -> None:
    """Teach the store's transcoder the two aggregate states (what a snapshot holds)."""
    transcoder.register(_StateTranscoding(event_state.EventState))
    transcoder.register(_StateTranscoding(coordinator.CoordinatorState))
