"""domain.evolve makes what dataclasses.replace makes (the folds' new states), for every state
class the folds change, and refuses what replace refuses."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.coordinator import CoordinatorState, Txn
from domain.event_state import EventState, Round, RoundOutcome
from domain.evolve import evolve
from domain.messages import CreateEvent, StartRound
from domain.round_master import ActiveRound

STATES = [
    Txn("e", CreateEvent("t", 0, "now"), (0, 1, 2, 3)),
    CoordinatorState("e"),
    EventState("e"),
    Round(1, 2, 100.0, ("ann",)),
    RoundOutcome(1, "aborted", None),
    ActiveRound(StartRound(1, 2, 100.0, ("ann",), "req")),
]

VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5),
                   st.frozensets(st.integers(0, 3)), st.dictionaries(st.text(max_size=3), st.integers(), max_size=3))


@st.composite
def changes(draw):
    state = draw(st.sampled_from(STATES))
    names = [f.name for f in dataclasses.fields(state)]
    chosen = draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names)))
    return state, {name: draw(VALUES) for name in chosen}


@settings(max_examples=300, deadline=None)
@given(changes())
def test_evolve_makes_what_replace_makes(case):
    state, change = case
    made, expected = evolve(state, **change), dataclasses.replace(state, **change)
    assert type(made) is type(expected)
    assert made == expected and repr(made) == repr(expected)
    assert made.__dict__ == expected.__dict__
    assert state == dataclasses.replace(state)  # the original is unchanged


def test_the_new_state_is_frozen_and_hashes_like_replaces():
    txn = STATES[0]
    made = evolve(txn, answered=True)
    assert hash(made) == hash(dataclasses.replace(txn, answered=True)) != hash(txn)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.answered = False


def test_an_unknown_field_is_refused_as_replace_refuses_it():
    with pytest.raises(TypeError):
        dataclasses.replace(STATES[0], nope=1)
    with pytest.raises(TypeError, match="nope"):
        evolve(STATES[0], nope=1)


def test_a_class_whose_init_does_more_goes_through_replace():
    @dataclass(frozen=True)
    class Checked:
        n: int

        def __post_init__(self):
            if self.n < 0:
                raise ValueError("negative")

    assert evolve(Checked(1), n=2) == Checked(2)
    with pytest.raises(ValueError):
        evolve(Checked(1), n=-1)

    @dataclass(frozen=True)
    class Derived:
        n: int
        double: int = dataclasses.field(init=False, default=0)

    assert evolve(Derived(1), n=2) == dataclasses.replace(Derived(1), n=2)


def test_an_events_initial_state_is_what_its_constructor_makes_with_mappings_of_its_own():
    from domain.event_state import initial

    first, second = initial("e1"), initial("e2")
    assert first == EventState("e1") and second == EventState("e2")
    made_fresh = [f.name for f in dataclasses.fields(EventState) if f.default_factory is not dataclasses.MISSING]
    assert made_fresh  # every field the constructor makes anew is made anew here too
    for name in made_fresh:
        assert getattr(first, name) is not getattr(second, name), name
