"""The one way tests let time pass: the timers a session armed fire in deadline order."""

from __future__ import annotations

from collections.abc import Iterator

from livestate import Session, events


def due_timers(session: Session, until: float) -> Iterator[events.TimerFired]:
    """The ``TimerFired`` events due by ``until``, earliest first. Lazy: handle each one before asking for
    the next, since handling it may arm or cancel timers."""
    while (deadline := session.next_deadline()) is not None and deadline <= until:
        timer = min(session.timers, key=lambda t: (session.timers[t], t.value))
        yield events.TimerFired(at=deadline, timer=timer)
