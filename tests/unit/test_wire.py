"""The wire form of messages and records (domain.wire): the encoders and decoders written out
per type give exactly what the generic rule gives, and anything else is still refused."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.aggregates import RECORD_TYPES
from domain.messages import Ack, Decision
from domain.wire import WIRE_TYPES, from_wire, to_wire

TYPES = sorted(set(RECORD_TYPES.values()), key=lambda cls: cls.__name__)


def reference(obj):
    """The rule, written plainly: a dataclass is a dict of its fields tagged with its type,
    a tuple or list a list."""
    if dataclasses.is_dataclass(obj):
        data = {"type": type(obj).__name__}
        data.update({f.name: reference(getattr(obj, f.name)) for f in dataclasses.fields(obj)})
        return data
    if isinstance(obj, (list, tuple)):
        return [reference(x) for x in obj]
    return obj


ANY_RECORD_OR_MESSAGE = st.one_of([st.from_type(cls) for cls in TYPES])


@settings(max_examples=600, deadline=None)
@given(obj=ANY_RECORD_OR_MESSAGE)
def test_each_type_goes_to_the_wire_as_the_rule_says_and_comes_back_equal(obj):
    data = to_wire(obj)
    assert data == reference(obj)
    back = from_wire(data, RECORD_TYPES)
    assert back == obj and type(back) is type(obj) and hash(back) == hash(obj)
    for field in dataclasses.fields(back):  # tuples stay tuples, nested types their own
        assert type(getattr(back, field.name)) is type(getattr(obj, field.name))
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(back, dataclasses.fields(back)[0].name, None)


def test_a_field_left_out_takes_its_default_and_one_too_many_or_renamed_is_refused():
    data = {"type": "Decision", "txn_id": "0-t", "event_id": "e", "commit": True}
    assert from_wire(data) == Decision("0-t", "e", True, None, None)
    with pytest.raises(ValueError, match="unexpected fields for Ack: \\['sites'\\]"):
        from_wire({"type": "Ack", "txn_id": "0-t", "event_id": "e", "sites": 1})  # as many fields
    with pytest.raises(ValueError, match="unexpected fields"):
        from_wire({"type": "Ack", "txn_id": "0-t", "event_id": "e", "site": 1, "more": 2})
    with pytest.raises(ValueError, match="missing"):
        from_wire({"type": "Ack", "txn_id": "0-t", "event_id": "e"})
    with pytest.raises(ValueError, match="unknown message type"):
        from_wire({"type": "Prepared", "txn_id": "0-t"})  # a record is not a message
    with pytest.raises(ValueError, match="unknown message type"):
        from_wire({"type": "Ack", "txn_id": "0-t", "event_id": "e", "site": {"type": "Nope"}})
    assert from_wire({"type": "Ack", "txn_id": "0-t", "event_id": "e", "site": 1}) == Ack("0-t", "e", 1)


def test_every_message_type_is_known_on_the_wire():
    assert set(WIRE_TYPES.values()) <= set(TYPES)
