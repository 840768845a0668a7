"""Hypothesis strategies for every wire message, derived from the attrs field types.

``messages(cls)`` generates instances of any wire class; ``server_messages()`` and ``client_messages()``
any message of one direction. Every generated message survives ``encode`` → ``decode`` unchanged, so they
serve users' own round-trip and transport property tests as they serve livestate's. Needs ``hypothesis``.
"""

from __future__ import annotations

import functools
import types
import typing
from typing import Any

import attrs
from hypothesis import strategies as st

from livestate import wire
from livestate.wire.scalars import (
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    INT64_MIN,
    Duration,
    Int64,
    JsonObject,
    MessageIndex,
)

__all__ = [
    "CLOSES",
    "client_messages",
    "closes",
    "fault_plans",
    "faults",
    "go_aways",
    "json_values",
    "messages",
    "resumption_updates",
    "server_messages",
]

_MAX_DURATION_NANOS = 315_576_000_000 * 10**9

#: Any JSON value (finite floats, keys of printable text), nested a few levels.
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(INT32_MIN, INT32_MAX)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
_json_objects = st.dictionaries(st.text(max_size=10), json_values, max_size=4)

_SCALARS: dict[Any, st.SearchStrategy[Any]] = {
    str: st.text(max_size=30),
    bool: st.booleans(),
    int: st.integers(INT32_MIN, INT32_MAX),
    float: st.floats(allow_nan=False, allow_infinity=False),
    Int64: st.integers(INT64_MIN, INT64_MAX).map(Int64),
    MessageIndex: st.integers(0, INT64_MAX).map(MessageIndex),
    Duration: st.integers(0, _MAX_DURATION_NANOS).map(Duration.from_nanos),
}


def _for_type(t: Any) -> st.SearchStrategy[Any]:
    if t in _SCALARS:
        return _SCALARS[t]
    if t == JsonObject:
        return _json_objects
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(st.none() if a is type(None) else _for_type(a) for a in args))
    if origin is tuple:
        return st.lists(_for_type(args[0]), max_size=3).map(tuple)
    if attrs.has(t):
        return messages(t)
    raise TypeError(f"no strategy for {t!r}")


def _deferred(t: Any) -> st.SearchStrategy[Any]:
    # Deferred so that recursive and mutually referring classes resolve lazily.
    return st.deferred(lambda: _for_type(t))


@functools.cache
def messages(cls: type) -> st.SearchStrategy[Any]:
    """Instances of the wire class ``cls``, with every field drawn from its wire type."""
    hints = typing.get_type_hints(cls)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in attrs.fields(cls):
        if field.name == "extra":
            # Pass-through setup fields: names that no typed field uses.
            fields["extra"] = st.dictionaries(
                st.from_regex(r"x[A-Za-z]{0,8}", fullmatch=True), json_values, max_size=3
            )
        else:
            fields[field.name] = _deferred(hints[field.name])
    return st.builds(cls, **fields)


_SERVER = (
    wire.SetupComplete,
    wire.ServerContent,
    wire.ToolCall,
    wire.ToolCallCancellation,
    wire.GoAway,
    wire.SessionResumptionUpdate,
    wire.VoiceActivityDetectionSignal,
    wire.VoiceActivity,
    wire.UsageReport,
    wire.ServerError,
)
_CLIENT = (wire.Setup, wire.ClientContent, wire.RealtimeInput, wire.ToolResponse)


def server_messages() -> st.SearchStrategy[wire.ServerMessage]:
    """Any known server message (not ``UnknownMessage``)."""
    return st.one_of(*(messages(cls) for cls in _SERVER))


def client_messages() -> st.SearchStrategy[wire.ClientMessage]:
    """Any client message."""
    return st.one_of(*(messages(cls) for cls in _CLIENT))


# --- fault schedules ------------------------------------------------------------------------------

#: Close codes and reasons the service is seen to send (PROTOCOL.md §6.1), 1006 standing for a dropped socket.
CLOSES: tuple[tuple[int, str], ...] = (
    (1000, ""),
    (1000, "The operation was cancelled."),
    (1001, ""),
    (1006, ""),
    (1007, "Request contains an invalid argument."),
    (1008, "The operation was aborted."),
    (1008, "Requested entity was not found"),
    (1011, "Internal error encountered."),
    (1011, "The service is currently unavailable."),
    (1011, "Deadline expired before operation could complete."),
)


def closes() -> st.SearchStrategy[tuple[int, str]]:
    """A ``(code, reason)`` the service is known to close with."""
    return st.sampled_from(CLOSES)


def resumption_updates(
    *, max_index: int = 50, transparent: bool = True
) -> st.SearchStrategy[wire.SessionResumptionUpdate]:
    """Resumption updates: resumable with a handle, or not (with the fields proto3 may omit)."""
    index = st.none() | st.integers(0, max_index).map(MessageIndex) if transparent else st.none()
    resumable = st.builds(
        wire.SessionResumptionUpdate,
        new_handle=st.text("abcdef0123456789-", min_size=1, max_size=16),
        resumable=st.just(True),
        last_consumed_client_message_index=index,
    )
    not_resumable = st.sampled_from(
        [
            wire.SessionResumptionUpdate(),
            wire.SessionResumptionUpdate(resumable=False),
            wire.SessionResumptionUpdate(new_handle="", resumable=False),
        ]
    )
    return resumable | not_resumable


def go_aways(*, max_seconds: float = 60.0) -> st.SearchStrategy[wire.GoAway]:
    """goAway messages, including the edge cases (no ``timeLeft``, ``0s``)."""
    seconds = st.floats(0, max_seconds, allow_nan=False).map(Duration.from_seconds)
    return st.builds(wire.GoAway, time_left=st.none() | seconds)


def faults(*, connections: int = 4, messages: int = 60) -> st.SearchStrategy[Any]:
    """A scripted fault for ``livestate.testing.server.FakeLiveServer`` (needs the websockets extra)."""
    from livestate.testing.server import Fault

    kinds = st.sampled_from(["goaway", "goaway_silent", "drop", "error_1011", "reject_next_resume"])
    return st.builds(
        Fault, kind=kinds, connection=st.integers(1, connections), after_messages=st.integers(1, messages)
    )


def fault_plans(*, connections: int = 4, messages: int = 60) -> st.SearchStrategy[Any]:
    """A FakeLiveServer fault plan: a few scripted faults plus seeded random ones, at rates a session survives."""
    from livestate.testing.server import FaultPlan

    return st.builds(
        FaultPlan,
        faults=st.lists(faults(connections=connections, messages=messages), max_size=4).map(tuple),
        seed=st.integers(0, 2**32 - 1),
        drop_rate=st.sampled_from([0.0, 0.005, 0.01]),
        error_rate=st.sampled_from([0.0, 0.005]),
        go_away_rate=st.sampled_from([0.0, 0.01]),
        go_away_time_left=st.sampled_from([0.05, 0.2]),
    )
