"""What an unreachable site means for the person looking at an event, in words: pure.

    outage(state, site=2, unreachable={0: "down: ..."}, home_reachable=None) -> dict | None

Uploads need every site (each photo is kept everywhere before it counts); a round needs its
home site, which starts it, collects the votes and decides. Votes already recorded are kept and
count when the home site is back, even if that is after the deadline.
"""

from __future__ import annotations

from collections.abc import Mapping

from domain.event_state import EventState


def _sites(sites: list[int]) -> str:
    names = [f"site {s}" for s in sites]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def outage(state: EventState, site: int, unreachable: Mapping[int, str],
           home_reachable: bool | None = None) -> dict | None:
    """{"title", "lines"} when a site this event needs can't be reached from here; else None.
    `home_reachable` (the API's home_site_reachable, when known) wins over `unreachable`."""
    if state.published:
        return None
    home = state.home_site
    home_down = home != site and (not home_reachable if home_reachable is not None else home in unreachable)
    others = sorted(s for s in unreachable if s not in (home, site))
    if not home_down and not others:
        return None
    if state.round is not None:
        return _during_round(state, home, home_down, others)
    down = sorted([home] * home_down + others)
    lines = [f"Photos can't be added until {'it is' if len(down) == 1 else 'they are'} back: every "
             "photo is kept on every site before it counts. Nothing is lost, and photos already "
             "added stay."]
    if home_down:
        lines.append(f"Starting a vote also waits for site {home}, the event's home site.")
    return {"title": f"{_sites(down).capitalize()} can't be reached right now", "lines": lines}


def _during_round(state: EventState, home: int, home_down: bool, others: list[int]) -> dict:
    closed = state.collecting
    if home_down:
        title = f"Site {home}, the event's home site, can't be reached right now"
        lines = [
            "It counts the votes and decides the round, so the result waits until it is back.",
            "Votes already cast are kept, and they count when it is back, even if that is after "
            "the deadline." if closed else
            "You can still vote before the deadline; votes already cast are kept, and they count "
            "when it is back, even if that is after the deadline.",
            "The number of votes shown here may be behind until then.",
        ]
        if others:
            lines.append(f"{_sites(others).capitalize()} can't be reached either.")
        return {"title": title, "lines": lines}
    return {"title": f"{_sites(others).capitalize()} can't be reached right now",
            "lines": ["The votes are counted once it is back. Votes already cast are kept. If it "
                      "stays away long after the deadline, this round ends without publishing and "
                      "the event opens again for photos."]}
