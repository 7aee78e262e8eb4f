"""`GET /api/openapi.json`: the JSON API of API.md as an OpenAPI 3 document.

Every status an operation can answer is listed with the error codes it carries, and links
chain a created event to the operations on it, so a stateful fuzzer (tests/e2e/test_openapi_fuzz.py)
can walk the API as a person would. The service conforms to this document; change both together.
"""

from __future__ import annotations

from aiohttp import web

from web.display_name import MAX_NAME, REFUSED_IN_NAME
from web.json_codec import json_response
from web.titles import MAX_TITLE, NOT_BLANK

# Codes that any state-changing request may carry: a foreign Origin, and the 2PC's refusals.
REFUSED_ORIGIN = (403, "forbidden_origin")
UNREACHABLE = (503, "site_unreachable", "storage_unavailable", "busy")
UNKNOWN_OUTCOME = (504, "outcome_unknown")
NO_EVENT = (404, "unknown_event", "not_found")
STORE_DOWN = (503, "storage_unavailable")

EVENT_ID = {"name": "event_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
ON_EVENT = {"event_id": "$request.path.event_id"}
ON_CREATED = {"event_id": "$response.body#/event_id"}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str, links: dict | None = None) -> dict:
    response = {"description": description, "content": {"application/json": {"schema": schema}}}
    return {**response, "links": links} if links else response


def _errors(*answers: tuple) -> dict:
    """{status: response} for (status, code, code...) tuples; codes of one status merge."""
    codes: dict[int, list[str]] = {}
    for status, *names in answers:
        codes.setdefault(status, []).extend(n for n in names if n not in codes.get(status, []))
    return {
        str(status): _json({"allOf": [_ref("Error"), {"properties": {"error": {"enum": names}}}]},
                           "Refused: " + ", ".join(names))
        for status, names in sorted(codes.items())
    }


def _link(operation_id: str, parameters: dict, body: dict | None = None) -> dict:
    link = {"operationId": operation_id, "parameters": parameters}
    return {**link, "requestBody": body} if body else link


def _links_to_event(parameters: dict, version: str) -> dict:
    """From an answer about one event to every operation on it."""
    vote = {"montage_version": version, "decision": "accept"}
    return {
        "ReadEvent": _link("readEvent", parameters),
        "UploadPhotos": _link("uploadPhotos", parameters),
        "Accept": _link("vote", parameters, vote),
        "Reject": _link("vote", parameters, {**vote, "decision": "reject"}),
        "Audit": _link("readAudit", parameters),
        "Stream": _link("streamEvent", parameters),
    }


def _nullable(schema: dict) -> dict:
    return {**schema, "nullable": True}


def _object(required: list[str], /, **properties: dict) -> dict:
    return {"type": "object", "required": required, "properties": properties}


STRING, INTEGER, BOOLEAN = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
NAME = {"type": "string", "maxLength": MAX_NAME}

SCHEMAS = {
    "Error": _object(["error", "message"], error=STRING, message=STRING),
    "Photo": _object(["photo_id", "sha256", "submitter", "site", "version"],
                     photo_id=STRING, sha256=STRING, submitter=STRING, submitter_name=STRING,
                     site=INTEGER, version={"type": "integer", "minimum": 1}),
    "Vote": _object(["round", "montage_version", "deadline", "accepted", "required", "my_vote"],
                    round=INTEGER, montage_version=INTEGER, deadline=STRING, accepted=INTEGER,
                    required=INTEGER, closed=BOOLEAN,
                    voters={"type": "array", "items": _object(["user_id", "name"], user_id=STRING,
                                                              name=_nullable(NAME))},
                    my_vote=_nullable({"type": "string", "enum": ["accept", "reject"]})),
    "Outcome": _object(["round", "outcome", "reason"], round=INTEGER,
                       outcome={"type": "string", "enum": ["published", "aborted"]},
                       reason=_nullable({"type": "string", "enum": ["rejected", "timeout", "unreachable"]})),
    "Event": _object(
        ["event_id", "title", "home_site", "home_site_reachable", "site", "state", "montage_version",
         "photos", "submitters", "photo_count", "submitter_count", "vote", "last_outcome", "published_version", "you"],
        event_id=STRING, title=STRING, home_site=INTEGER, site=INTEGER, url=STRING, created_at=STRING,
        state={"type": "string", "enum": ["open", "voting", "published"]},
        montage_version={"type": "integer", "minimum": 0},
        photos={"type": "array", "items": _ref("Photo")},
        submitters={"type": "array", "items": STRING},
        photo_count=INTEGER, submitter_count=INTEGER, home_site_reachable=BOOLEAN,
        vote=_nullable(_ref("Vote")), last_outcome=_nullable(_ref("Outcome")),
        published_version=_nullable(INTEGER),
        you=_object(["user_id", "is_submitter"], user_id=STRING, is_submitter=BOOLEAN)),
    "Me": _object(["user_id", "display_name"], user_id=STRING, display_name=_nullable(NAME)),
}

# A title is 1 to 200 characters, at least one of them not a space (web.titles).
TITLE = {"type": "string", "minLength": 1, "maxLength": MAX_TITLE, "pattern": NOT_BLANK}

OPERATIONS = {
    "/api/events": {"post": {
        "operationId": "createEvent",
        "summary": "Create an event (201 once every site holds it)",
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": _object(["title"], title=TITLE)}}},
        "responses": {
            "201": _json(_object(["event_id", "url", "home_site"], event_id={"type": "string", "format": "uuid"},
                                 url=STRING, home_site=INTEGER),
                         "Created on every site", _links_to_event(ON_CREATED, 0)),
            **_errors((400, "invalid_title", "invalid_request"), REFUSED_ORIGIN, UNREACHABLE, UNKNOWN_OUTCOME),
        },
    }},
    "/api/events/{event_id}": {"get": {
        "operationId": "readEvent",
        "summary": "This site's view of an event",
        "parameters": [EVENT_ID],
        "responses": {
            "200": _json(_ref("Event"), "The event",
                         _links_to_event(ON_EVENT, "$response.body#/montage_version")),
            **_errors(NO_EVENT, STORE_DOWN),
        },
    }},
    "/api/events/{event_id}/photos": {"post": {
        "operationId": "uploadPhotos",
        "summary": "Add photos (201 once they are durable on every site)",
        "parameters": [EVENT_ID],
        "requestBody": {"required": True, "content": {"multipart/form-data": {
            "schema": {**_object(["photo"], photo={"type": "array", "minItems": 1, "maxItems": 20,
                                                   "items": {"type": "string", "format": "binary"}}),
                       "additionalProperties": False},
            "encoding": {"photo": {"contentType": "image/jpeg, image/png, image/webp, image/heic"}},
        }}},
        "responses": {
            "201": _json(_object(["photos", "montage_version"], photos={"type": "array", "items": _ref("Photo")},
                                 montage_version=INTEGER),
                         "Added on every site", _links_to_event(ON_EVENT, "$response.body#/montage_version")),
            **_errors((400, "invalid_request"), (403, "contributor_limit"), REFUSED_ORIGIN, NO_EVENT,
                      (409, "voting_in_progress", "event_published"), (413, "too_large"),
                      (415, "unsupported_media_type"), (422, "invalid_image"), UNREACHABLE, UNKNOWN_OUTCOME),
        },
    }},
    "/api/events/{event_id}/votes": {"post": {
        "operationId": "vote",
        "summary": "Accept or reject the current montage (a first accept starts a round)",
        "parameters": [EVENT_ID],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _object(
            ["montage_version", "decision"], montage_version={"type": "integer", "minimum": 0},
            decision={"type": "string", "enum": ["accept", "reject"]})}}},
        "responses": {
            "200": _json(_object(["recorded", "round", "deadline"],
                                 recorded={"type": "string", "enum": ["accept", "reject"]},
                                 round=INTEGER, deadline=STRING),
                         "Recorded, final", {"ReadEvent": _link("readEvent", ON_EVENT)}),
            **_errors((400, "invalid_request"), (403, "not_submitter"), REFUSED_ORIGIN, NO_EVENT,
                      (409, "superseded_montage", "already_voted", "no_vote_in_progress", "voting_closed",
                       "event_published"),
                      UNREACHABLE, UNKNOWN_OUTCOME),
        },
    }},
    "/api/events/{event_id}/audit": {"get": {
        "operationId": "readAudit",
        "summary": "This site's log of the event, replayed, oldest first",
        "parameters": [EVENT_ID],
        "responses": {
            "200": _json(_object(["site", "entries"], site=INTEGER, event_id=STRING, entries={
                "type": "array", "items": _object(["at", "type", "data"], at=STRING, role=STRING, type=STRING,
                                                  data={"type": "object"})},
                starts={"type": "array", "items": _object(["at", "after_crash"], at=STRING,
                                                          after_crash={"type": "boolean"})}),
                "The log, and this site's starts since the event's first record here"),
            **_errors(NO_EVENT, STORE_DOWN),
        },
    }},
    "/api/events/{event_id}/stream": {"get": {
        "operationId": "streamEvent",
        "summary": "Server-sent events: the event each time this site's view of it changes",
        "parameters": [EVENT_ID],
        "responses": {
            "200": {"description": "Events named `event`, each with the event (as in readEvent) as JSON "
                                   "`data`: one at once, then one per change; comments keep it alive",
                    "content": {"text/event-stream": {"schema": _object(
                        ["event", "data"], event={"type": "string", "enum": ["event"]}, data=STRING)}}},
            **_errors(NO_EVENT, STORE_DOWN),
        },
    }},
    "/api/me": {
        "get": {"operationId": "readMe", "summary": "Who this cookie says you are",
                "responses": {"200": _json(_ref("Me"), "You")}},
        "post": {
            "operationId": "setMe", "summary": "Set (or, with an empty name, forget) your display name",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _object(
                ["display_name"], display_name={**NAME, "pattern": f"^[^{REFUSED_IN_NAME}]*$"})}}},
            "responses": {"200": _json(_ref("Me"), "Your name as shown"),
                          **_errors((400, "invalid_request"), REFUSED_ORIGIN)},
        },
    },
    "/api/status": {"get": {
        "operationId": "readStatus", "summary": "This site, its peers, transactions in doubt",
        "responses": {"200": _json(_object(
            ["site", "peers", "events", "in_doubt", "storage", "alarms"], site=INTEGER, url=STRING,
            events=INTEGER,
            peers={"type": "array", "items": _object(["site", "url", "reachable"], site=INTEGER, url=STRING,
                                                     reachable=BOOLEAN, problem=STRING)},
            in_doubt={"type": "array", "items": _object(["event_id", "txn_id"], event_id=STRING, txn_id=STRING)},
            storage=_object(["ok"], ok=BOOLEAN, problem=STRING),
            alarms={"type": "array", "items": _object(["event_id", "txn_id", "problem"], event_id=STRING,
                                                      txn_id=STRING, problem=STRING)}), "Ready")},
    }},
}

DOCUMENT = {
    "openapi": "3.0.3",
    "info": {"title": "Photo sessions", "version": "1",
             "description": "The JSON API of every site (API.md). Errors are "
                            '{"error": code, "message": text}; bad input never gets a 5xx.'},
    "paths": OPERATIONS,
    "components": {"schemas": SCHEMAS},
}


async def openapi(request: web.Request) -> web.Response:
    return json_response(DOCUMENT)
