"""livestate.testing.reference: the synchronous transport users test their own command handling with."""

from __future__ import annotations

from livestate import Backend, Session, SessionConfig, commands, events, wire
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


def test_a_model_follows_every_command_before_it_is_carried_out_and_every_message_on_the_wire() -> None:
    seen: list[tuple[str, object, list[int]]] = []
    d = ReferenceDriver(
        Session(SessionConfig(setup=wire.Setup(model="models/m"), backend=Backend.VERTEX, transparent=True)),
        on_command=lambda c: seen.append(("command", c, d.buffer.seqs())),
        on_wire=lambda n, m: seen.append(("wire", (n, m), d.buffer.seqs())),
    )
    d.live()
    d.send(wire.RealtimeInput(text="a"))
    d.send(wire.RealtimeInput(text="b"))
    d.server(
        wire.SessionResumptionUpdate(
            new_handle="h1", resumable=True, last_consumed_client_message_index=wire.MessageIndex(1)
        )
    )
    d.close(1006)
    d.server(wire.SetupComplete())
    assert [c for kind, c, _ in seen if kind == "command"] == d.log
    assert (
        [m for kind, m, _ in seen if kind == "wire"]
        == d.wire_log
        == [
            (1, wire.RealtimeInput(text="a")),
            (1, wire.RealtimeInput(text="b")),
            (2, wire.RealtimeInput(text="b")),  # replayed: the server had not consumed it
        ]
    )
    (trim,) = [buffered for kind, c, buffered in seen if isinstance(c, commands.TrimThrough)]
    assert trim == [1, 2]  # the model sees the buffer as the trim found it
