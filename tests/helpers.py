"""Small builders for session tests: configs, frames as messages, and a session driven by hand."""

from __future__ import annotations

from typing import Any

import attrs

from livestate import Backend, Session, SessionConfig, commands, events, wire
from livestate.buffer import ReplayBuffer

from clock import due_timers

SETUP = wire.Setup(
    model="models/gemini-live-2.5-flash", extra={"generationConfig": {"responseModalities": ["AUDIO"]}}
)


def config(*, vertex: bool = False, **overrides: Any) -> SessionConfig:
    if vertex:
        overrides.setdefault("backend", Backend.VERTEX)
        overrides.setdefault("transparent", True)
    return SessionConfig(setup=SETUP, **overrides)


def audio(tag: str) -> wire.RealtimeInput:
    return wire.RealtimeInput(text=tag)


def update(
    handle: str = "", *, resumable: bool = True, index: int | None = None
) -> wire.SessionResumptionUpdate:
    return wire.SessionResumptionUpdate(
        new_handle=handle or None,
        resumable=resumable,
        last_consumed_client_message_index=None if index is None else wire.MessageIndex(index),
    )


def go_away(seconds: float | None) -> wire.GoAway:
    return wire.GoAway(time_left=None if seconds is None else wire.Duration.from_seconds(seconds))


def tool_call(*ids: str) -> wire.ToolCall:
    return wire.ToolCall(function_calls=tuple(wire.FunctionCall(id=i, name="f", args={}) for i in ids))


def tool_response(*ids: str) -> wire.ToolResponse:
    return wire.ToolResponse(
        function_responses=tuple(wire.FunctionResponse(id=i, name="f", response={"ok": True}) for i in ids)
    )


TURN = wire.ServerContent(model_turn=wire.Content(parts=(wire.Part(text="hi"),)))
TURN_COMPLETE = wire.ServerContent(turn_complete=True)


@attrs.define
class Driver:
    """A session plus a clock, a ReplayBuffer and a log of every command, for hand-written scenarios."""

    session: Session
    now: float = 0.0
    log: list[commands.Command] = attrs.field(factory=list)
    buffer: ReplayBuffer = attrs.field(factory=ReplayBuffer)
    #: (connection, message) for everything that went on the wire after setup.
    wire_log: list[tuple[int, wire.ClientMessage]] = attrs.field(factory=list)

    def feed(self, event: events.Event) -> tuple[commands.Command, ...]:
        out = self.session.handle(event)
        self.log.extend(out)
        for command in out:
            if isinstance(command, commands.SendMessage):
                self.wire_log.append((self.session.connection, command.message))
            replayed = self.buffer.apply(command)
            if isinstance(command, commands.ReplayBuffered):
                self.wire_log.extend((self.session.connection, message) for _, message in replayed)
        return out

    def at(self, t: float) -> Driver:
        self.advance(t - self.now)
        return self

    def advance(self, dt: float) -> None:
        target = self.now + dt
        for fired in due_timers(self.session, target):
            self.now = fired.at
            self.feed(fired)
        self.now = target

    def connect(self) -> tuple[commands.Command, ...]:
        return self.feed(events.Connect(at=self.now))

    def server(
        self, message: wire.ServerMessage, *, connection: int | None = None
    ) -> tuple[commands.Command, ...]:
        return self.feed(events.MessageReceived(at=self.now, message=message, connection=connection))

    def send(self, message: wire.ClientMessage) -> tuple[commands.Command, ...]:
        return self.feed(events.SendRequested(at=self.now, message=message))

    def close(
        self, code: int, reason: str = "", *, connection: int | None = None
    ) -> tuple[commands.Command, ...]:
        return self.feed(
            events.ConnectionClosed(at=self.now, code=code, reason=reason, connection=connection)
        )

    def live(self) -> Driver:
        """Connect and complete setup."""
        self.connect()
        self.server(wire.SetupComplete())
        return self

    def of(self, kind: type) -> list[Any]:
        return [c for c in self.log if isinstance(c, kind)]


def driver(**overrides: Any) -> Driver:
    return Driver(Session(config(**overrides)))
