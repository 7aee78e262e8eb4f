"""The running round's tally as the event page says it: "2 of 3 accepted", "Voted: Ana, Ben".

It reads the API's own `vote` object (web.views.event_json): its `accepted` is the event-wide
count as far as this site knows, and its `voters` (when the API gives them) say who has voted
anywhere; without `voters`, the ballots this site holds are all the page can name.
"""

from __future__ import annotations

from collections.abc import Mapping


def tally(page_vote: Mapping, api_vote: Mapping | None, who: Mapping[str, str],
          ballots_here: list[str]) -> dict:
    """{"accepted", "required", "voted"}: counts and the names of those who voted (names
    only for people who may see the photos: `who` is empty otherwise)."""
    api_vote = api_vote or {}
    accepted = api_vote.get("accepted", page_vote.get("accepted", 0))
    required = api_vote.get("required", page_vote.get("required", 0))
    voters = api_vote.get("voters")
    if isinstance(voters, list):
        people = [(v.get("user_id", ""), v.get("name")) for v in voters if isinstance(v, Mapping)]
    else:
        people = [(user, None) for user in ballots_here]
    voted = [who.get(user) or name or "a guest" for user, name in people] if who else []
    return {"accepted": accepted, "required": required, "voted": voted}
