"""The wire codec: JSON frames ⇄ wire classes, through one pair of cattrs converters.

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

Decoding runs a converter without detailed validation first (the fast path) and, only when that fails,
structures the same object again with detailed validation to say exactly where the frame is wrong.
"""

from __future__ import annotations

import json
import json.scanner
import math
import re
from collections.abc import Callable, Mapping
from functools import partial
from types import UnionType
from typing import Any, Final, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.cols import homogenous_tuple_structure_factory
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from livestate.errors import ProtocolError
from livestate.wire.client import ClientContent, ClientMessage, RealtimeInput, Setup, ToolResponse
from livestate.wire.fast import builder_eligible, make_builder_structure_fn
from livestate.wire.scalars import (
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    INT64_MIN,
    Duration,
    Int64,
    JsonObject,
    MessageIndex,
    WireValueError,
)
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
#: How many levels of objects and arrays an untyped value may nest, counting the value itself: an opaque
#: field (``functionCall.args``, ``groundingMetadata``, a ``setup`` field kept in ``extra``) or a top-level
#: value of an unknown message. Deeper raises ProtocolError. Genuine frames nest a few levels; the bound
#: keeps every decoded message far inside what recursive code (the encoders, the journal) can walk.
MAX_NESTING_DEPTH: Final = 64

WireMessage = ServerMessage | ClientMessage


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # orjson rejects these ("number is infinity when parsed as double")
        raise ValueError(f"number out of range: {text[:40]}")
    return value


_UINT64_MAX = 2**64 - 1


def _int_as_orjson(text: str) -> int | float:
    # orjson reads an integer beyond int64/uint64 as a double; a short one (every usual count) fits.
    if len(text) < 19:
        return int(text)
    value = int(text) if len(text) < 400 else None  # longer ones are infinite as doubles anyway
    if value is not None and INT64_MIN <= value <= _UINT64_MAX:
        return value
    return _finite_float(text)


_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
#: A run of backslashes, then "u" and a surrogate's hex digits: an escape if the run is odd. Group 2 is
#: the third hex digit, 8 to b for a high surrogate, c to f for a low one.
_SURROGATE_ESCAPE = re.compile(r"(\\+)u[dD]([89a-fA-F])[0-9a-fA-F]{2}")


def _has_lone_surrogate_escape(text: str) -> bool:
    """Whether JSON text escapes a lone UTF-16 surrogate: a high one not directly followed by a low one, or
    a low one not directly after a high one.

    Checked on the text, not the parsed value, because a duplicate key can drop the string that held it
    (orjson still rejects that document)."""
    unpaired_high_end = -1  # where the escape of a high surrogate still waiting for its low one ends
    for match in _SURROGATE_ESCAPE.finditer(text):
        if len(match[1]) % 2 == 0:  # an escaped backslash, then the letters "ud...": not an escape
            continue
        escape_start = match.end(1) - 1
        if match[2] in "89abAB":
            if unpaired_high_end >= 0:
                return True
            unpaired_high_end = match.end()
        elif unpaired_high_end != escape_start:
            return True
        else:
            unpaired_high_end = -1
    return unpaired_high_end >= 0


_json_decoder = json.JSONDecoder(
    parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_int_as_orjson
)
_json_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
# typeshed types the context argument as a scanner; it is the decoder whose settings the scanner copies.
_scan_value = json.scanner.make_scanner(_json_decoder)  # type: ignore[arg-type]
_JSON_WHITESPACE = " \t\n\r"


def stdlib_loads(data: bytes | str) -> Any:
    """Parse one UTF-8 JSON document with the standard library, to the same value orjson gives. Raises
    ValueError for what orjson rejects and Python's JSON would let through: NaN and Infinity, numbers beyond
    the float range, and lone surrogates (escaped or raw); an integer beyond 64 bits becomes a float.

    Calls the decoder's C scanner directly: ``json.loads`` spends more time finding where the document
    starts and ends (two regular expressions) than a short frame takes to scan. Anything the direct call
    cannot settle (leading whitespace, trailing data) goes through the full decoder, which also words
    the errors.
    """
    if isinstance(data, bytes | bytearray):
        text = data.decode("utf-8")  # strict UTF-8 holds no surrogate
    elif not data.isascii() and _LONE_SURROGATE.search(data):
        raise ValueError("a surrogate in the text, which is then not UTF-8")  # as orjson says
    else:
        text = data
    # A memchr rules the check out for the usual frame: base64 audio has no backslash.
    if "\\" in text and _has_lone_surrogate_escape(text):
        raise ValueError("lone surrogate escaped in a string")
    try:
        obj, end = _scan_value(text, 0)
    except StopIteration:
        return _json_decoder.decode(text)
    if end != len(text) and text[end:].strip(_JSON_WHITESPACE):
        return _json_decoder.decode(text)
    return obj


def stdlib_dumps(obj: Any) -> str:
    """Compact JSON with the standard library. Raises TypeError for a lone surrogate in a string, which
    could not be sent as UTF-8 (orjson refuses it too)."""
    text = _json_encoder.encode(obj)
    if not text.isascii() and _LONE_SURROGATE.search(text):
        raise TypeError("str is not valid UTF-8: surrogates not allowed")
    return text


_loads: Callable[[bytes | str], Any]
try:
    import orjson

    _loads = orjson.loads

    def _dumps(obj: Any) -> str:
        return orjson.dumps(obj).decode()

except ImportError:  # pragma: no cover - exercised only without the optional speed-up
    _loads, _dumps = stdlib_loads, stdlib_dumps


def to_camel(name: str) -> str:
    """``last_consumed_client_message_index`` → ``lastConsumedClientMessageIndex``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def to_snake(name: str) -> str:
    """``lastConsumedClientMessageIndex`` → ``last_consumed_client_message_index``."""
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, int | float):
        return repr(value)
    return "a list" if isinstance(value, list) else "an object"


# Strict scalar hooks. Each raises WireValueError, whose text becomes the ProtocolError message.


def _structure_str(value: Any, _: Any) -> str:
    if type(value) is not str:
        raise WireValueError(f"expected a string, got {_describe(value)}")
    return value


def _structure_optional_str(value: Any, _: Any) -> str | None:
    # The most common field type, inlined: one call instead of two.
    if value is None or type(value) is str:
        return value
    raise WireValueError(f"expected a string, got {_describe(value)}")


def _structure_bool(value: Any, _: Any) -> bool:
    if type(value) is not bool:
        raise WireValueError(f"expected a boolean, got {_describe(value)}")
    return value


def _structure_int32(value: Any, _: Any) -> int:
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is not int or not INT32_MIN <= value <= INT32_MAX:
        raise WireValueError(f"expected an int32, got {_describe(value)}")
    return value


def _structure_float(value: Any, _: Any) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise WireValueError(f"expected a number, got {_describe(value)}")
    return float(value)


def _parse_int64(value: Any) -> int | None:
    if type(value) is str:
        digits = value[1:] if value[:1] == "-" else value
        if not (digits.isascii() and digits.isdigit()):
            return None
        value = int(value)
    elif type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is not int or not INT64_MIN <= value <= INT64_MAX:
        return None
    return value


def _structure_int64(value: Any, _: Any) -> Int64:
    parsed = _parse_int64(value)
    if parsed is None:
        raise WireValueError(f"expected an int64, got {_describe(value)}")
    return Int64(parsed)


def _structure_index(value: Any, _: Any) -> MessageIndex:
    parsed = _parse_int64(value)
    if parsed is None or parsed < 0:
        raise WireValueError(f"expected a non-negative int64, got {_describe(value)}")
    return MessageIndex(parsed)


def _structure_duration(value: Any, _: Any) -> Duration:
    if type(value) is not str:
        raise WireValueError(f"expected a duration string like '9.5s', got {_describe(value)}")
    return Duration.parse(value)


def _nested_too_deep(value: Any) -> bool:
    """Whether a parsed JSON value nests more than MAX_NESTING_DEPTH levels (the value itself is one)."""
    if type(value) is not dict and type(value) is not list:
        return False
    level = [value]
    for _ in range(MAX_NESTING_DEPTH):  # one level at a time, without recursion
        below = [
            item
            for container in level
            for item in (container.values() if type(container) is dict else container)
            if type(item) is dict or type(item) is list
        ]
        if not below:
            return False
        level = below
    return True


_TOO_DEEP = f"nested more than {MAX_NESTING_DEPTH} levels deep (the limit for an untyped value)"


def _too_deep_key(obj: dict[str, Any]) -> str | None:
    """The first key of ``obj`` whose value nests more than MAX_NESTING_DEPTH levels, or None."""
    return next((key for key, value in obj.items() if _nested_too_deep(value)), None)


def _structure_object(value: Any, _: Any) -> JsonObject:
    if type(value) is not dict:
        raise WireValueError(f"expected an object, got {_describe(value)}")
    if value and _nested_too_deep(value):
        raise WireValueError(_TOO_DEEP)
    return value


def _is_homogenous_tuple(t: Any) -> bool:
    args = get_args(t)
    return get_origin(t) is tuple and len(args) == 2 and args[1] is Ellipsis


def _tuple_factory(t: Any, conv: cattrs.Converter) -> Callable[[Any, Any], tuple[Any, ...]]:
    if conv.detailed_validation:  # cattrs' own, which names the failing index
        inner = homogenous_tuple_structure_factory(t, conv)

        def structure(value: Any, _: Any) -> tuple[Any, ...]:
            if type(value) is not list:
                raise WireValueError(f"expected a list, got {_describe(value)}")
            return inner(value, t)  # type: ignore[no-any-return]

        return structure

    item_type = get_args(t)[0]
    item = conv.get_structure_hook(item_type)

    def structure_fast(value: Any, _: Any) -> tuple[Any, ...]:
        if type(value) is not list:
            raise WireValueError(f"expected a list, got {_describe(value)}")
        return tuple([item(element, item_type) for element in value])

    return structure_fast


def _is_optional(t: Any) -> bool:
    args = get_args(t)
    return get_origin(t) in (Union, UnionType) and len(args) == 2 and type(None) in args


def _optional_factory(t: Any, conv: cattrs.Converter) -> Callable[[Any, Any], Any]:
    # cattrs' own Optional hook dispatches on every call; resolving the inner hook once is ~2x faster.
    inner_type = next(a for a in get_args(t) if a is not type(None))
    if inner_type is str:
        return _structure_optional_str
    if (
        attrs.has(inner_type) and inner_type is not Duration
    ):  # a nested message takes null itself: one call fewer
        return _attrs_structure_factory(inner_type, conv, nullable=True)
    inner = conv.get_structure_hook(inner_type)

    def structure(value: Any, _: Any) -> Any:
        return None if value is None else inner(value, inner_type)

    return structure


#: Fields kept beside the message kind in a frame, not inside its object.
_FRAME_LEVEL = frozenset({"usage_metadata"})


def _wire_fields(cls: type) -> list[attrs.Attribute[Any]]:
    return [a for a in attrs.fields(cls) if a.name not in _FRAME_LEVEL and a.name != "extra"]


def _camelize(obj: dict[str, Any], snake_to_camel: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = snake_to_camel.get(key, key)
        if name in out or (name != key and name in obj):
            raise WireValueError(f"field {name!r} given twice (also as {key!r})")
        out[name] = value
    return out


def _attrs_structure_factory(
    cls: type, conv: cattrs.Converter, *, nullable: bool = False
) -> Callable[[Any, Any], Any]:
    fields = _wire_fields(cls)
    snake_to_camel = {a.name: to_camel(a.name) for a in fields if "_" in a.name}
    if not conv.detailed_validation and builder_eligible(cls):
        return make_builder_structure_fn(
            cls,
            conv,
            wire_names={a.name: to_camel(a.name) for a in fields},
            frame_level=[name for name in _FRAME_LEVEL if hasattr(cls, name)],
            normalise=partial(_camelize, snake_to_camel=snake_to_camel) if snake_to_camel else None,
            nullable=nullable,
        )
    renames: dict[str, Any] = {a.name: override(rename=to_camel(a.name)) for a in fields}
    renames.update({name: override(omit=True) for name in _FRAME_LEVEL if hasattr(cls, name)})
    has_extra = "extra" in attrs.fields_dict(cls)
    if has_extra:
        renames["extra"] = override(omit=True)
    generated: Callable[[Any, Any], Any] = make_dict_structure_fn(cls, conv, **renames)
    known = frozenset(to_camel(a.name) for a in fields)

    if has_extra:

        def structure_with_extra(obj: Any, _: Any) -> Any:
            if obj is None and nullable:
                return None
            if type(obj) is not dict:
                raise WireValueError(f"expected an object, got {_describe(obj)}")
            if "_" in "".join(obj):
                obj = _camelize(obj, snake_to_camel)
            result = generated(obj, cls)
            extra = {k: v for k, v in obj.items() if k not in known}
            if extra and (deep := _too_deep_key(extra)) is not None:
                raise WireValueError(f"field {deep!r} {_TOO_DEEP}")
            return attrs.evolve(result, extra=extra) if extra else result

        return structure_with_extra

    if not snake_to_camel:  # no field name has an underscore: no spelling to normalise

        def structure_plain(obj: Any, _: Any) -> Any:
            if obj is None and nullable:
                return None
            if type(obj) is not dict:
                raise WireValueError(f"expected an object, got {_describe(obj)}")
            return generated(obj, cls)

        return structure_plain

    def structure(obj: Any, _: Any) -> Any:
        if obj is None and nullable:
            return None
        if type(obj) is not dict:
            raise WireValueError(f"expected an object, got {_describe(obj)}")
        if not known.issuperset(obj) and "_" in "".join(obj):  # the common case skips the join
            obj = _camelize(obj, snake_to_camel)
        return generated(obj, cls)

    return structure


def _attrs_unstructure_factory(cls: type, conv: cattrs.Converter) -> Callable[[Any], Any]:
    renames: dict[str, Any] = {a.name: override(rename=to_camel(a.name)) for a in _wire_fields(cls)}
    renames.update({name: override(omit=True) for name in _FRAME_LEVEL if hasattr(cls, name)})
    has_extra = "extra" in attrs.fields_dict(cls)
    if has_extra:
        renames["extra"] = override(omit=True)
    generated: Callable[[Any], Any] = make_dict_unstructure_fn(
        cls, conv, _cattrs_omit_if_default=True, **renames
    )
    if not has_extra:
        return generated

    def unstructure(obj: Any) -> Any:
        out = generated(obj)
        out.update(obj.extra)
        return out

    return unstructure


def _make_converter(*, detailed: bool) -> cattrs.Converter:
    conv = cattrs.Converter(detailed_validation=detailed)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(int, _structure_int32)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(Int64, _structure_int64)
    conv.register_structure_hook(MessageIndex, _structure_index)
    conv.register_structure_hook(Duration, _structure_duration)
    conv.register_structure_hook_func(lambda t: t == JsonObject, _structure_object)
    conv.register_structure_hook_factory(_is_homogenous_tuple, _tuple_factory)
    conv.register_structure_hook_factory(_is_optional, _optional_factory)
    conv.register_structure_hook_factory(attrs.has, _attrs_structure_factory)
    conv.register_unstructure_hook(Int64, str)
    conv.register_unstructure_hook(MessageIndex, str)
    conv.register_unstructure_hook(Duration, lambda d: d.text)
    conv.register_unstructure_hook_factory(attrs.has, _attrs_unstructure_factory)
    return conv


_FAST = _make_converter(detailed=False)
_DETAILED = _make_converter(detailed=True)

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
#: The builder of each server kind under either spelling of its key, for frames that hold the kind alone.
_SERVER_BUILDERS: dict[str, Callable[..., Any]] = {
    spelling: _FAST_HOOKS[_SERVER_KINDS[name]] for spelling, name in _SERVER_KEYS.items() if name != _USAGE
}


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
    obj = _load(data, max_size)
    if len(obj) == 1:  # the common frame, one kind alone: build it directly
        ((key, body),) = obj.items()
        build = _SERVER_BUILDERS.get(key)
        if build is not None:
            try:
                message = build(body)
            except Exception:
                pass  # the general path below says what is wrong
            else:
                if type(message) is not GoAway or _negative_time_left(message) is None:
                    return message  # type: ignore[no-any-return]
    return _server_message(obj)


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


def encode(message: WireMessage) -> str:
    """Encode a client or server message as one compact JSON frame."""
    return _dumps(unstructure(message))
