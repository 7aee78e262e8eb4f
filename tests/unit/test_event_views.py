from domain.event_state import EventState
from web.event_views import EventViews


def state(event_id: str, title: str) -> EventState:
    return EventState(event_id, exists=True, title=title)


def test_a_view_built_from_fewer_records_never_replaces_a_newer_one():
    views = EventViews(capacity=10)
    newer = views.offer(state("e", "after the upload"), seq=5)

    assert views.offer(state("e", "read before the upload"), seq=3) is newer
    assert views.get("e").title == "after the upload"
    assert views.offer(state("e", "after the next one"), seq=7).title == "after the next one"


def test_the_least_recently_used_views_go_first_past_capacity():
    views = EventViews(capacity=2)
    views.offer(state("a", "A"), 1)
    views.offer(state("b", "B"), 1)
    views.get("a")  # a is now the most recently used
    views.offer(state("c", "C"), 1)

    assert len(views) == 2
    assert views.get("b") is None
    assert views.get("a").title == "A" and views.get("c").title == "C"
