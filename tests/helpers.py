"""Small builders for session tests: configs, frames as messages, and a session driven by hand."""

from __future__ import annotations

from typing import Any

from livestate import Backend, Session, SessionConfig, wire
from livestate.testing.reference import ReferenceDriver

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


def driver(**overrides: Any) -> ReferenceDriver:
    """A session on livestate's reference transport, the hand-driven session every core test uses."""
    return ReferenceDriver(Session(config(**overrides)))
