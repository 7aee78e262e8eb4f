"""Protocol messages and stored records as JSON-ready data, and back: dataclasses become dicts
tagged with their type; anything that is not one of the known types, or carries a field its type
does not have, is refused (ValueError)."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from domain.messages import (
    Ack,
    AddPhotos,
    Ballot,
    CountRelay,
    CreateEvent,
    Decision,
    Outcome,
    PhotoMeta,
    Prepare,
    Publish,
    Query,
    ReportAck,
    RoundAnswer,
    RoundRequest,
    StartRound,
    Vote,
    VoteReply,
    VoteReport,
    VoteRequest,
)

WIRE_TYPES = {
    cls.__name__: cls
    for cls in (
        PhotoMeta, CreateEvent, AddPhotos, StartRound, Publish, Ballot, Prepare, Vote, Decision,
        Ack, Query, Outcome, VoteReport, RoundRequest, RoundAnswer, ReportAck, CountRelay,
        VoteRequest, VoteReply,
    )
}


_PLAIN = (str, int, float, bool, type(None))


@functools.cache
def _field_names(cls: type) -> tuple[str, ...] | None:
    """A dataclass's field names in order (None for any other type): looked up once per class."""
    if not dataclasses.is_dataclass(cls):
        return None
    return tuple(f.name for f in dataclasses.fields(cls))


@functools.cache
def _field_set(cls: type) -> frozenset[str]:
    return frozenset(_field_names(cls))


def to_wire(obj: Any) -> Any:
    """A message as JSON-ready data: dataclasses become dicts tagged with their type."""
    if type(obj) in _PLAIN:
        return obj
    names = _field_names(type(obj))
    if names is not None:
        data = {"type": type(obj).__name__}
        for name in names:
            data[name] = to_wire(getattr(obj, name))
        return data
    if isinstance(obj, (list, tuple)):
        return [to_wire(x) for x in obj]
    return obj


def from_wire(data: Any, types: dict[str, type] = WIRE_TYPES) -> Any:
    """The inverse of to_wire; raises ValueError on anything that is not one of `types`."""
    if isinstance(data, list):
        return tuple(from_wire(x, types) for x in data)
    if not isinstance(data, dict):
        return data
    cls = types.get(data.get("type"))
    if cls is None:
        raise ValueError(f"unknown message type {data.get('type')!r}")
    names = _field_set(cls)
    fields = {}
    for key, value in data.items():
        if key == "type":
            continue
        if key not in names:
            unexpected = sorted(set(data) - names - {"type"})
            raise ValueError(f"unexpected fields for {cls.__name__}: {unexpected}")
        fields[key] = value if type(value) in _PLAIN else from_wire(value, types)
    try:
        return cls(**fields)
    except TypeError as e:
        raise ValueError(str(e)) from None
