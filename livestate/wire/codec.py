"""The wire codec: JSON frames ⇄ wire classes, through one pair of cattrs converters.

Three rooms: :mod:`livestate.wire.jsonio` loads and dumps JSON, :mod:`livestate.wire.hooks` holds the
converters and their strict hooks, and this module dispatches frames to message kinds.

``decode`` takes a text or binary frame and returns a server message; ``decode_client`` does the same for
client frames (the fake server and the journal need it); ``encode`` turns any wire message into compact
camelCase JSON. Inbound frames accept snake_case at every level, int64 as a number or a decimal string, and
ignore unknown fields; scalars are strict. Anything else raises :class:`ProtocolError` naming the field by
its camelCase wire path, and no other exception escapes.

What the decoder keeps untyped (an opaque object such as ``functionCall.args`` or ``groundingMetadata``, or
the whole frame of an :class:`UnknownMessage`) nests at most :data:`MAX_NESTING_DEPTH` levels, so every
decoded message can be re-encoded, journaled and walked recursively. Both JSON libraries accept the same
documents, parsed to the same values: orjson rejects lone UTF-16 surrogates (``"\\ud800"``) and numbers
beyond the float range, and reads an integer beyond 64 bits as a float, so the standard-library fallback
does too. (Only past a few hundred levels of nesting do they differ: each parser's recursion limit.)

Decoding runs a converter without detailed validation first (the fast path: :mod:`livestate.wire.fast`)
and, only when that fails, structures the same object again with detailed validation to say exactly where
the frame is wrong. A frame of one camelCase kind, with or without ``usageMetadata`` beside it, goes
straight from the JSON parser to the kind's builder; any other frame, and any frame a builder raises for,
takes the general path (:func:`structure_server`'s), which gives the same message or the error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import cattrs

from livestate.errors import ProtocolError
from livestate.wire.client import ClientContent, ClientMessage, RealtimeInput, Setup, ToolResponse
from livestate.wire.hooks import _DETAILED as _DETAILED
from livestate.wire.hooks import _FAST as _FAST
from livestate.wire.hooks import _TOO_DEEP, _describe, _too_deep_key, builder_structure_fn, to_camel, to_snake
from livestate.wire.hooks import MAX_NESTING_DEPTH as MAX_NESTING_DEPTH
from livestate.wire.jsonio import _dumps, _loads
from livestate.wire.jsonio import stdlib_dumps as stdlib_dumps
from livestate.wire.jsonio import stdlib_loads as stdlib_loads
from livestate.wire.scalars import Duration, WireValueError
from livestate.wire.server import (
    GoAway,
    ServerContent,
    ServerError,
    ServerMessage,
    SessionResumptionUpdate,
    SetupComplete,
    ToolCall,
    ToolCallCancellation,
    UnknownMessage,
    UsageMetadata,
    UsageReport,
    VoiceActivity,
    VoiceActivityDetectionSignal,
)

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "MAX_NESTING_DEPTH",
    "WireMessage",
    "decode",
    "decode_client",
    "encode",
    "structure",
    "structure_client",
    "structure_server",
    "to_camel",
    "to_snake",
    "unstructure",
]

#: Frames longer than this (bytes, or characters for text frames) are rejected before parsing.
DEFAULT_MAX_FRAME_BYTES: Final = 1 << 20

WireMessage = ServerMessage | ClientMessage

_SERVER_KINDS: dict[str, type] = {
    "setupComplete": SetupComplete,
    "serverContent": ServerContent,
    "toolCall": ToolCall,
    "toolCallCancellation": ToolCallCancellation,
    "goAway": GoAway,
    "sessionResumptionUpdate": SessionResumptionUpdate,
    "voiceActivityDetectionSignal": VoiceActivityDetectionSignal,
    "voiceActivity": VoiceActivity,
    "error": ServerError,
}
_CLIENT_KINDS: dict[str, type] = {
    "setup": Setup,
    "clientContent": ClientContent,
    "realtimeInput": RealtimeInput,
    "toolResponse": ToolResponse,
}
_USAGE = "usageMetadata"
_KEY_OF: dict[type, str] = {cls: key for key, cls in (_SERVER_KINDS | _CLIENT_KINDS).items()}


def _spellings(kinds: Mapping[str, type]) -> dict[str, str]:
    names = [*kinds, _USAGE]
    return {spelling: name for name in names for spelling in (name, to_snake(name))}


_SERVER_KEYS = _spellings(_SERVER_KINDS)
_FAST_HOOKS: dict[type, Callable[..., Any]] = {
    cls: _FAST.get_structure_hook(cls)
    for cls in (*_SERVER_KINDS.values(), *_CLIENT_KINDS.values(), UsageMetadata)
}
_CLIENT_KEYS = _spellings(_CLIENT_KINDS)
_build_usage = _FAST_HOOKS[UsageMetadata]
_structure_time_left = _FAST.get_structure_hook(Duration | None)


def _structure_time_left_ahead(value: Any, type_: Any) -> Duration | None:
    """A goAway's timeLeft, for the fast path; raises for a negative one, which the general path rejects."""
    time_left: Duration | None = _structure_time_left(value, type_)
    if time_left is not None and time_left.nanos < 0:
        raise WireValueError("negative timeLeft")
    return time_left


#: The builder of each server kind under its camelCase key (a snake_case one takes the general path). The
#: goAway one raises for a negative timeLeft itself (the usual form, which it takes inline, has no sign).
_SERVER_BUILDERS: dict[str, Callable[..., Any]] = {
    key: _FAST_HOOKS[cls] for key, cls in _SERVER_KINDS.items() if cls is not GoAway
} | {"goAway": builder_structure_fn(GoAway, _FAST, fallbacks={"time_left": _structure_time_left_ahead})}


def _wire_path(path: str) -> str:
    return ".".join(to_camel(segment) for segment in path.split(".") if segment not in ("", "$"))


def _format_exception(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, WireValueError):
        return str(exc)
    if isinstance(exc, KeyError):
        return f"required field {to_camel(str(exc.args[0]))!r} is missing"
    return cattrs.v.format_exception(exc, type_)


def _structure(body: Any, cls: type, kind: str, usage: UsageMetadata | None = None) -> Any:
    try:
        if usage is None:
            return _FAST_HOOKS[cls](body, cls)
        return _FAST_HOOKS[cls](body, cls, usage)  # every server kind's hook is a builder's
    except Exception:
        pass
    try:
        _DETAILED.structure(body, cls)
    except Exception as exc:
        problems = []
        for line in cattrs.transform_error(exc, path="$", format_exception=_format_exception):
            message, _, path = line.rpartition(" @ ")
            where = ".".join(p for p in (kind, _wire_path(path)) if p)
            problems.append(f"{where}: {message}")
        raise ProtocolError("; ".join(problems)) from exc
    raise ProtocolError(f"{kind}: rejected by the fast decoder but accepted by the detailed one")


def _load(data: bytes | str, max_size: int) -> dict[str, Any]:
    if len(data) > max_size:
        raise ProtocolError(f"frame: {len(data)} bytes exceeds the {max_size}-byte limit")
    try:
        obj = _loads(data)
    except (ValueError, TypeError, RecursionError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"frame: not valid JSON ({exc})") from None
    return _checked_frame(obj)


def _checked_frame(obj: Any) -> dict[str, Any]:
    if type(obj) is not dict:
        raise ProtocolError(f"frame: expected a JSON object, got {_describe(obj)}")
    if not obj:
        raise ProtocolError("frame: empty object, expected exactly one message kind")
    return obj


def _split(obj: dict[str, Any], spellings: Mapping[str, str]) -> tuple[str | None, Any, Any]:
    if len(obj) == 1:  # the common frame: one kind, nothing beside it
        ((key, value),) = obj.items()
        name = spellings.get(key)
        if name is None:
            return None, None, None
        return (None, None, value) if name == _USAGE else (name, value, None)
    kind, body, usage, seen = None, None, None, ""
    for key, value in obj.items():
        name = spellings.get(key)
        if name is None:
            continue
        if name == _USAGE:
            if usage is not None:
                raise ProtocolError(f"frame: {_USAGE} given twice (also as {key!r})")
            usage = value
        elif kind == name:
            raise ProtocolError(f"frame: {name} given twice (as {seen!r} and {key!r})")
        elif kind is not None:
            raise ProtocolError(f"frame: two message kinds in one frame ({kind} and {name})")
        else:
            kind, body, seen = name, value, key
    return kind, body, usage


def decode(data: bytes | str, *, max_size: int = DEFAULT_MAX_FRAME_BYTES) -> ServerMessage:
    """Decode one server frame (text or UTF-8 binary) into a server message.

    Raises :class:`ProtocolError` naming the wire field for anything malformed; nothing else escapes.
    """
    if len(data) > max_size:
        raise ProtocolError(f"frame: {len(data)} bytes exceeds the {max_size}-byte limit")
    try:
        obj = _loads(data)
    except (ValueError, TypeError, RecursionError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"frame: not valid JSON ({exc})") from None
    # The usual frame, one kind (perhaps with usageMetadata beside it), goes straight to the kind's builder.
    # Whatever a builder raises for (an unknown or snake_case key has none), the general path says what is
    # wrong, or reads it as the builder would not.
    if type(obj) is dict:
        try:
            if len(obj) == 1:
                ((key, body),) = obj.items()
                return _SERVER_BUILDERS[key](body)  # type: ignore[no-any-return]
            if len(obj) == 2 and _USAGE in obj:  # usageMetadata and one other key
                for key, body in obj.items():
                    if key != _USAGE:
                        return _SERVER_BUILDERS[key](body, None, _build_usage(obj[_USAGE]))  # type: ignore[no-any-return]
        except Exception:
            pass
    return _server_message(_checked_frame(obj))


def _negative_time_left(go_away: GoAway) -> str | None:
    """The wire text of ``timeLeft`` when it is negative (a frame the decoder rejects), else None."""
    time_left = go_away.time_left
    return time_left.text if time_left is not None and time_left.nanos < 0 else None


def _server_message(obj: dict[str, Any]) -> ServerMessage:
    kind, body, usage = _split(obj, _SERVER_KEYS)
    usage_metadata = None if usage is None else _structure(usage, UsageMetadata, _USAGE)
    if kind is None:
        if usage_metadata is not None:
            return UsageReport(usage_metadata=usage_metadata)
        if (deep := _too_deep_key(obj)) is not None:
            raise ProtocolError(f"frame: unknown message {deep!r} {_TOO_DEEP}")
        return UnknownMessage(keys=tuple(obj), raw=obj)
    message = _structure(body, _SERVER_KINDS[kind], kind, usage_metadata)
    if type(message) is GoAway and (negative := _negative_time_left(message)) is not None:
        raise ProtocolError(f"goAway.timeLeft: must not be negative, got {negative!r}")
    return message  # type: ignore[no-any-return]


def decode_client(data: bytes | str, *, max_size: int = DEFAULT_MAX_FRAME_BYTES) -> ClientMessage:
    """Decode one client frame (what a server receives). Raises :class:`ProtocolError` when malformed."""
    return structure_client(_load(data, max_size))


def unstructure(message: WireMessage) -> dict[str, Any]:
    """The frame of ``message`` as a JSON-ready dict (camelCase, absent fields omitted)."""
    if type(message) is UnknownMessage:
        return message.raw
    usage = getattr(message, "usage_metadata", None)
    frame: dict[str, Any] = {}
    if type(message) is not UsageReport:
        frame[_KEY_OF[type(message)]] = _FAST.unstructure(message)
    if usage is not None:
        frame[_USAGE] = _FAST.unstructure(usage)
    return frame


def structure(frame: Mapping[str, Any]) -> WireMessage:
    """The inverse of :func:`unstructure`, for either direction: client kinds first, then server kinds.

    A frame whose direction is known should use :func:`structure_server` or :func:`structure_client`: a
    server frame holding only an unknown ``setup`` key is an :class:`UnknownMessage`, not a ``Setup``."""
    obj = dict(frame)
    if not obj:
        raise ProtocolError("frame: empty object, expected exactly one message kind")
    kind, body, usage = _split(obj, _CLIENT_KEYS)
    if kind is not None and usage is None:
        return _structure(body, _CLIENT_KINDS[kind], kind)  # type: ignore[no-any-return]
    return _server_message(obj)


def structure_server(frame: Mapping[str, Any]) -> ServerMessage:
    """The server message of a parsed frame, exactly as :func:`decode` would give it; ProtocolError if not."""
    obj = dict(frame)
    if not obj:
        raise ProtocolError("frame: empty object, expected exactly one message kind")
    return _server_message(obj)


def structure_client(frame: Mapping[str, Any]) -> ClientMessage:
    """The client message of a parsed frame, as :func:`decode_client` would give it; ProtocolError if not."""
    obj = dict(frame)
    kind, body, usage = _split(obj, _CLIENT_KEYS)
    if kind is None or usage is not None:
        raise ProtocolError(f"frame: expected one of {', '.join(_CLIENT_KINDS)}, got keys {list(obj)}")
    return _structure(body, _CLIENT_KINDS[kind], kind)  # type: ignore[no-any-return]


#: The last realtime input encoded and its frame. Each is encoded up to three times in a row on its way
#: (checked at the door, written ahead to a store, put on the wire); it holds only strings and frozen
#: values, so the same object always gives the same frame. (Other kinds may hold dicts an application could
#: change between two sends: they are always encoded afresh.)
_last_encoded: tuple[object, str] = (None, "")


def encode(message: WireMessage) -> str:
    """Encode a client or server message as one compact JSON frame."""
    global _last_encoded
    if type(message) is not RealtimeInput:
        return _dumps(unstructure(message))
    last = _last_encoded
    if last[0] is message:
        return last[1]
    frame = _dumps(unstructure(message))
    _last_encoded = (message, frame)
    return frame
