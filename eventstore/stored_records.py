"""A role's new records as the recorder stores them, byte for byte what the library's mapper
would write, without its generic path.

The mapper turns any event into a dict of its attributes and hands it to the JSON transcoder,
whose encoder calls back into Python for the time stamp: ~10 us per record, and a create
stores 11 of them over four sites. A record event holds only a time stamp and its `data`, an
aggregate's creation only a time stamp, plain strings and its first record's data (plain JSON
data too), so their stored form is built here directly: the time stamp as the transcoder itself encodes it, then the transcoder's own JSON
encoder over plain data. The topic and the stored state are unchanged, so the audit, the
start-up scan, a replay and older code read them as before.
"""

from __future__ import annotations

import json.encoder
from datetime import datetime

from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic

from domain.aggregates import RecordEvent


_PLAIN = (str, int, float, bool, type(None))
_FIRST = (dict, type(None))  # a creation's first record: its wire form, or none


class StoredRecords:
    """Encodes pending events for the recorder: record events and an aggregate's creation
    (whose attributes are plain values) directly, anything else through the mapper."""

    def __init__(self, mapper: Mapper):
        self.mapper = mapper
        transcoder = mapper.transcoder
        self._direct = mapper.cipher is None and mapper.compressor is None and hasattr(transcoder, "types")
        self._topics: dict[type, str] = {}
        if self._direct:
            self._timestamp = transcoder.types[datetime]  # the library's "datetime_iso"
            self._encode = _encoder_like(transcoder)

    def stored(self, event) -> StoredEvent:
        if not self._direct:
            return self.mapper.to_stored_event(event)
        if isinstance(event, RecordEvent):
            state = {"timestamp": self._stamp(event.timestamp), "data": event.data}
        else:
            state = self._plain_state(event)
            if state is None:
                return self.mapper.to_stored_event(event)
        topic = self._topics.get(type(event))
        if topic is None:
            topic = self._topics[type(event)] = get_topic(type(event))
        return StoredEvent(
            originator_id=event.originator_id,
            originator_version=event.originator_version,
            topic=topic,
            state=self._encode(state),
        )

    def _stamp(self, timestamp: datetime) -> dict:
        """A time stamp as the transcoder encodes it."""
        return {"_type_": self._timestamp.name, "_data_": self._timestamp.encode(timestamp)}

    def _plain_state(self, event) -> dict | None:
        """What the mapper would encode for an event of plain attributes and a time stamp (an
        aggregate's creation: its topic, event id and the first record's wire form, plain JSON
        data as a record event's), in the same order; None for any other."""
        if getattr(type(event), "class_version", 1) > 1:
            return None
        state = dict(vars(event))
        del state["originator_id"], state["originator_version"]
        timestamp = state.get("timestamp")
        if type(timestamp) is not datetime:
            return None
        for key, value in state.items():
            if key != "timestamp" and type(value) not in (_FIRST if key == "first" else _PLAIN):
                return None
        state["timestamp"] = self._stamp(timestamp)
        return state


def _encoder_like(transcoder):
    """The transcoder's `encode`, with its JSON encoder made once rather than per record.

    The library's transcoder calls `json.JSONEncoder.encode`, which builds the C encoder anew
    for every record (~3 of its ~6 us). The one built here has the same settings and `default`
    (so the same bytes, tests/integration/test_stored_records.py), but no check for circular
    references: a record's data is a tree of plain values (domain.wire), and a shared check
    would not be safe from two threads. Without the C encoder, the transcoder's own."""
    encoder, make = transcoder.encoder, json.encoder.c_make_encoder
    if make is None or encoder.indent is not None or encoder.ensure_ascii:
        return transcoder.encode
    iterencode = make(None, encoder.default, json.encoder.encode_basestring, encoder.indent,
                      encoder.key_separator, encoder.item_separator, encoder.sort_keys,
                      encoder.skipkeys, encoder.allow_nan)
    return lambda data: "".join(iterencode(data, 0)).encode("utf8")
