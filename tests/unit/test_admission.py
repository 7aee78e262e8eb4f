"""Which vote starts a round before it counts: the first accept of a submitter on an open event."""

import pytest

from domain.admission import starts_round
from domain.event_state import EventState, Round
from domain.messages import ACCEPT, REJECT, PhotoMeta

PHOTOS = (PhotoMeta("p1", "s1", "t1", "ann", 0), PhotoMeta("p2", "s2", "t2", "bob", 1))
OPEN = EventState("ev", exists=True, photos=PHOTOS)
VOTING = EventState("ev", exists=True, photos=PHOTOS, round=Round(1, 2, 1e12, ("ann", "bob")))
PUBLISHED = EventState("ev", exists=True, photos=PHOTOS, published_version=2)
AT = 1000.0  # when the vote was cast (a copy forwarded again has the same)
# Open again: round 1, opened by ann's accept at AT, was aborted.
ENDED = EventState("ev", exists=True, photos=PHOTOS, rounds=1, recorded={("ann", AT): (1, 1e12, ACCEPT)})


@pytest.mark.parametrize(
    ("state", "user", "decision", "starts"),
    [
        (OPEN, "ann", ACCEPT, True),
        (OPEN, "ann", REJECT, False),  # a reject on an open event has nothing to end
        (OPEN, "eve", ACCEPT, False),  # not a submitter: refused later, starts nothing
        (VOTING, "bob", ACCEPT, False),  # a round runs: the vote joins it
        (PUBLISHED, "ann", ACCEPT, False),
        (ENDED, "ann", ACCEPT, False),  # a copy of the accept that opened the round that ended
        (ENDED, "bob", ACCEPT, True),
    ],
)
def test_only_a_submitters_accept_on_an_open_event_starts_a_round(state, user, decision, starts):
    assert starts_round(state, user, decision, AT) is starts
