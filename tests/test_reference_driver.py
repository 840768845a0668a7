"""livestate.testing.reference: the synchronous transport users test their own command handling with."""

from __future__ import annotations

from livestate import Session, SessionConfig, commands, events, wire
from livestate.testing.reference import ReferenceDriver


def test_the_documented_example_holds() -> None:
    d = ReferenceDriver(Session(SessionConfig(setup=wire.Setup(model="models/m")))).live()
    d.send(wire.RealtimeInput(text="hello"))
    d.server(wire.SessionResumptionUpdate(new_handle="h1", resumable=True))
    d.close(1006)
    d.advance(1.0)
    d.server(wire.SetupComplete())
    assert d.wire_log[-1] == (2, wire.RealtimeInput(text="hello"))
    assert [type(m) for m in d.sent[2]] == [wire.Setup, wire.RealtimeInput]


def test_handed_back_messages_are_filled_in_and_timers_fire_at_their_deadlines() -> None:
    d = ReferenceDriver(Session(SessionConfig(setup=wire.Setup(model="models/m")))).live()
    d.send(wire.RealtimeInput(text="a"))
    d.close(1011, "Internal error encountered.")  # no handle yet: a fresh session, attempt 1
    d.close(1011, "Internal error encountered.")  # attempt 2 backs off
    (backoff,) = [c for c in d.log if isinstance(c, commands.StartTimer) and c.timer.value == "backoff"]
    d.advance(1.0)
    opened = [at for at, c in d.timeline if isinstance(c, commands.OpenConnection)]
    assert opened[-1] == backoff.deadline and d.now == 1.0

    d.feed(events.CloseRequested(at=d.now))
    assert d.handed_back == {1: wire.RealtimeInput(text="a")}
