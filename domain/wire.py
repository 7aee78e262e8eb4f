"""Protocol messages and stored records as JSON-ready data, and back: dataclasses become dicts
tagged with their type; anything that is not one of the known types, or carries a field its type
does not have, is refused (ValueError)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
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
    encode = _ENCODERS.get(type(obj))
    if encode is not None:
        return encode(obj)
    if type(obj) in _PLAIN:
        return obj
    if type(obj) is tuple:
        return [x if type(x) in _PLAIN_SET else to_wire(x) for x in obj]
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
    decode = _DECODERS.get(cls)
    if decode is not None and len(data) == decode.size:
        decoded = decode(data, types)  # every field given, nothing else: the written-out path
        if decoded is not None:
            return decoded
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


# Each known type's encoder and decoder, written out once at import for its fields (as the
# dataclasses module writes a class's __init__): a message crosses to_wire and from_wire once
# each way per site-to-site hop, and the generic loops above cost ~2-4 us a message, twice
# what these do. They give what the generic paths give (tests/unit/test_wire.py); the decoder
# takes only data that names every field and nothing else (it answers None otherwise, and the
# generic path decides, with its errors and the fields' defaults).
def _encoder(cls: type) -> Callable[[Any], dict]:
    names = _field_names(cls)  # each field's value in a local of its own: v_<field>
    lines = [f"    v_{name} = obj.{name}" for name in names]
    items = ", ".join(f"{name!r}: v_{name} if type(v_{name}) in plain else to_wire(v_{name})" for name in names)
    lines.append(f"    return {{'type': {cls.__name__!r}, {items}}}")
    return _compiled("encode", "obj", lines, cls, to_wire=to_wire)


def _decoder(cls: type) -> Callable[[dict, dict], Any]:
    names = _field_names(cls)
    lines = ["    try:"] + [f"        v_{name} = data[{name!r}]" for name in names]
    lines += ["    except KeyError:", "        return None"]
    lines += [f"    if type(v_{name}) not in plain: v_{name} = from_wire(v_{name}, types)" for name in names]
    if hasattr(cls, "__post_init__"):
        lines.append(f"    return cls({', '.join(f'v_{name}' for name in names)})")
    else:  # as copy and pickle make one: a frozen dataclass's __init__ sets each field the slow way
        lines += ["    obj = new(cls)", "    fields = obj.__dict__"]
        lines += [f"    fields[{name!r}] = v_{name}" for name in names]
        lines.append("    return obj")
    decode = _compiled("decode", "data, types", lines, cls, from_wire=from_wire, new=object.__new__)
    decode.size = len(names) + 1  # the fields and "type"
    return decode


def _compiled(name: str, params: str, lines: list[str], cls: type, **names) -> Callable:
    namespace = {"cls": cls, "plain": _PLAIN_SET, **names}
    exec(f"def {name}({params}):\n" + "\n".join(lines), namespace)
    return namespace[name]


_PLAIN_SET = frozenset(_PLAIN)
_ENCODERS: dict[type, Callable[[Any], dict]] = {}
_DECODERS: dict[type, Callable[[dict, dict], Any]] = {}


def register(*classes: type) -> None:
    """Write out the encoder and decoder of each of these dataclasses (domain.aggregates
    registers the stored records)."""
    for cls in classes:
        _ENCODERS[cls] = _encoder(cls)
        _DECODERS[cls] = _decoder(cls)


register(*WIRE_TYPES.values())
