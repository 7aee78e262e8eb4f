"""The audit page's material: every site's log of an event, and a timeline a person can read.

This site's log is read from its store; each peer's comes from its `GET /api/events/{id}/audit`.
A peer that does not answer in time is shown as unreachable (None), never waited for long.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime

import aiohttp

from domain.records import acknowledging_sites
from web import lifecycle
from web.pages.audit_traces import describe_payload, person

PEER_TIMEOUT_S = 2.0


def entry_json(entry) -> dict:
    """A LogEntry as the audit API lists it."""
    return {"at": entry.at.isoformat(), "role": entry.role, "type": entry.type, "data": entry.data}


async def _peer_log(session: aiohttp.ClientSession, url: str) -> dict | None:
    try:
        timeout = aiohttp.ClientTimeout(total=PEER_TIMEOUT_S)
        async with session.get(url, timeout=timeout) as response:
            if response.status != 200:
                return None
            body = await response.json()
            return {"entries": list(body["entries"]), "starts": list(body.get("starts") or ())}
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError, KeyError, TypeError):
        return None


async def all_logs(service, event_id: str) -> tuple[dict[int, list[dict] | None], dict[int, list[dict]]]:
    """({site: entries, or None when that site did not answer}, {site: its (re)starts since the
    event's first record there}), for every site."""
    settings = service.settings
    loop = asyncio.get_running_loop()
    own = loop.run_in_executor(None, service.store.log, event_id)
    peers = [s for s in settings.sites if s != service.site]
    fetched = await asyncio.gather(*(
        _peer_log(service.transport.session, f"{settings.peer_url(s)}/api/events/{event_id}/audit")
        for s in peers))
    logs: dict[int, list[dict] | None] = {s: body and body["entries"] for s, body in zip(peers, fetched)}
    starts = {s: body["starts"] for s, body in zip(peers, fetched) if body}
    entries = await own
    logs[service.site] = [entry_json(e) for e in entries]
    starts[service.site] = await loop.run_in_executor(
        None, lifecycle.starts, settings.site_dir(service.site), entries[0].at if entries else None)
    return dict(sorted(logs.items())), dict(sorted(starts.items()))


def timeline(logs: Mapping[int, Sequence[Mapping] | None], names: Mapping[str, str],
             starts: Mapping[int, Sequence[Mapping]] | None = None) -> list[dict]:
    """Every record of every site, and every (re)start, oldest first, each as a sentence."""
    payloads = {}
    for entries in logs.values():
        for entry in entries or ():
            data = entry.get("data") or {}
            if data.get("payload") and data.get("txn_id"):
                payloads[data["txn_id"]] = data["payload"]
    rows = []
    for site, entries in logs.items():
        for entry in entries or ():
            data = entry.get("data") or {}
            what = describe_payload(payloads.get(data.get("txn_id")), names)
            clock = datetime.fromisoformat(entry["at"]).strftime("%H:%M:%S.%f")[:-3]
            rows.append({"at": entry["at"], "time": clock, "site": site, "role": entry.get("role", ""),
                         "type": entry["type"], "text": sentence(entry, what, names)})
    for site, found in (starts or {}).items():
        for start in found:
            clock = datetime.fromisoformat(start["at"]).strftime("%H:%M:%S.%f")[:-3]
            text = ("started again after a crash (it had stopped without shutting down)"
                    if start.get("after_crash") else "started again after shutting down")
            rows.append({"at": start["at"], "time": clock, "site": site, "role": "site",
                         "type": "Restarted", "text": text})
    return sorted(rows, key=lambda r: (datetime.fromisoformat(r["at"]), r["site"]))


def sentence(entry: Mapping, what: str, names: Mapping[str, str]) -> str:
    data = entry.get("data") or {}
    kind = entry["type"]
    ballot = data.get("ballot") or {}
    if kind == "Created":
        return f"opened its {entry.get('role', '')} log for this event"
    if kind == "Began":
        return f"began to {what}, asking sites {', '.join(map(str, data.get('sites', ())))} to prepare"
    if kind == "Prepared":
        return f"prepared to {what} and voted yes (site {data.get('coordinator')} coordinates)"
    if kind == "Refused":
        return f"refused to {what}: {data.get('reason')}"
    if kind == "Decided":
        verdict = "commit" if data.get("commit") else f"abort ({data.get('reason')})"
        return f"decided to {verdict}: {what}"
    if kind == "Committed":
        return f"committed: {what}"
    if kind == "Aborted":
        return f"aborted ({data.get('reason')}): {what}"
    if kind == "Acknowledged":
        sites = acknowledging_sites(data)
        named = f"site {sites[0]}" if len(sites) == 1 else f"sites {', '.join(map(str, sites))}"
        return f"heard {named} acknowledge the decision to {what}"
    if kind == "VoteCast":
        who = person(ballot.get("user", ""), names)
        return f"recorded {who}'s vote: {ballot.get('decision')} (round {data.get('round')})"
    if kind == "Withdrawn":
        return "gave up a request to start a vote: it can never start one now"
    if kind == "Reported":
        return (f"heard that {person(ballot.get('user', ''), names)} voted {ballot.get('decision')} "
                f"at site {ballot.get('site')} (round {data.get('round')})")
    return kind
