"""The transition table against an independent spec (tests/spec.py), edge by edge and pair by pair."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from livestate import UsageError
from livestate.machine import MACHINE, STATE_DOCS, TABLE, TERMINAL, TRIGGERS, SessionState, fire

import spec


def machine_edges() -> dict[tuple[str, str], list[tuple[str | None, str | None]]]:
    edges: dict[tuple[str, str], list[tuple[str | None, str | None]]] = {}
    for trigger, event in MACHINE.events.items():
        for source, transitions in event.transitions.items():
            for t in transitions:
                guards = [c.func for c in t.conditions]
                assert len(guards) <= 1
                edges.setdefault((source, trigger), []).append((t.dest, guards[0] if guards else None))
    return edges


def test_the_machine_has_exactly_the_edges_of_the_spec() -> None:
    assert machine_edges() == spec.EDGES


def test_terminal_states_have_no_exits() -> None:
    for state in TERMINAL:
        assert MACHINE.get_triggers(state.name) == []
    assert {s.name for s in TERMINAL} == set(spec.TERMINAL)


def test_every_state_is_documented_and_every_row_says_what_it_means() -> None:
    assert set(STATE_DOCS) == set(SessionState)
    assert all(row.doc for row in TABLE)


class Stub:
    """A bare model whose guards answer as told and whose callbacks do nothing."""

    def __init__(self, state: SessionState, guard: bool) -> None:
        self.state = state
        self.attempt_open = guard
        self.calls: list[str] = []
        self._guard = guard

    def at_safe_point(self, *_: Any, **__: Any) -> bool:
        return self._guard

    def may_retry(self, *_: Any, **__: Any) -> bool:
        return self._guard

    def __getattr__(self, name: str) -> Any:
        return lambda *_, **__: self.calls.append(name)


@pytest.mark.parametrize(("state", "trigger"), list(itertools.product(SessionState, TRIGGERS)))
@pytest.mark.parametrize("guard", [True, False])
def test_every_state_and_trigger_pair(state: SessionState, trigger: str, guard: bool) -> None:
    model = Stub(state, guard)
    edges = spec.EDGES.get((state.name, trigger))
    if edges is None:
        with pytest.raises(UsageError, match=f"{trigger} is not allowed in {state.name}"):
            fire(model, trigger, event=None)
        assert model.state is state
        assert model.calls == []
        return
    fire(model, trigger, event=None)
    chosen = next((dest for dest, g in edges if g is None or guard), "unchanged")
    expected = state if chosen in (None, "unchanged") else SessionState[chosen]
    assert model.state is expected
