"""The decoder's fast path: genuine frozen objects, and exact agreement with cattrs' detailed converter."""

from __future__ import annotations

import contextlib
import copy
import json
import pickle
import re
import weakref
from collections.abc import Callable
from typing import Any
from unittest import mock

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from livestate import wire
from livestate.errors import ProtocolError
from livestate.testing import strategies
from livestate.wire import codec, hooks
from livestate.wire.codec import to_snake
from livestate.wire.fast import builder_eligible, usual_duration

from conftest import FIXTURES, load_jsonl
from frames import invalid_frame_data, replace_somewhere

SERVER_VALID = load_jsonl("server_valid.jsonl")
SERVER_INVALID = load_jsonl("server_invalid.jsonl")
CLIENT_VALID = load_jsonl("client_valid.jsonl")
KINDS = codec._SERVER_KINDS | codec._CLIENT_KINDS | {"usageMetadata": wire.UsageMetadata}
REJECTED = object()


def snake_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {to_snake(key): snake_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [snake_keys(item) for item in value]
    return value


def structure_both(kind: str, body: Any) -> tuple[Any, Any]:
    cls = KINDS[kind]
    try:
        fast = codec._FAST_HOOKS[cls](body, cls)
    except Exception:
        fast = REJECTED
    try:
        detailed = codec._DETAILED.structure(body, cls)
    except Exception:
        detailed = REJECTED
    return fast, detailed


def test_every_server_kind_is_built_without_its_init() -> None:
    # decode hands usageMetadata to a server kind's builder: each kind must have one.
    for cls in codec._SERVER_KINDS.values():
        assert builder_eligible(cls), cls
    assert not builder_eligible(wire.Setup)  # a required model and a factory default: cattrs builds it


def test_a_built_message_is_an_ordinary_frozen_instance() -> None:
    frame = {
        "serverContent": {
            "modelTurn": {"parts": [{"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": "AAE="}}]},
            "turnComplete": True,
        },
        "usageMetadata": {"totalTokenCount": 7},
    }
    message = wire.decode(json.dumps(frame))
    expected = wire.ServerContent(
        model_turn=wire.Content(
            parts=(wire.Part(inline_data=wire.Blob(mime_type="audio/pcm;rate=24000", data="AAE=")),)
        ),
        turn_complete=True,
        usage_metadata=wire.UsageMetadata(total_token_count=7),
    )
    assert type(message) is wire.ServerContent
    assert message.model_turn is not None and message.model_turn.parts is not None
    assert type(message.model_turn.parts[0]) is wire.Part
    assert message == expected and hash(message) == hash(expected)
    assert repr(message) == repr(expected)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        message.turn_complete = False  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        del message.interrupted  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(message)) == expected
    assert copy.copy(message) == expected and copy.deepcopy(message) == expected
    assert attrs.evolve(message, turn_complete=False).turn_complete is False
    assert weakref.ref(message)() is message


def test_absent_and_null_fields_are_none_on_a_built_message() -> None:
    message = wire.decode('{"serverContent": {"interrupted": true, "modelTurn": null}}')
    assert isinstance(message, wire.ServerContent)
    for field in attrs.fields(wire.ServerContent):
        expected = True if field.name == "interrupted" else None
        assert getattr(message, field.name) is expected, field.name


def test_a_non_ascii_digit_is_not_a_duration() -> None:
    # int() accepts "٣" (Arabic-Indic three); the wire form allows only ASCII digits.
    with pytest.raises(ProtocolError, match=r"goAway\.timeLeft"):
        wire.decode('{"goAway": {"timeLeft": "\\u0663s"}}')


def test_a_negative_time_left_is_rejected_on_the_fast_path_too() -> None:
    with pytest.raises(ProtocolError, match=r"goAway\.timeLeft: must not be negative"):
        wire.decode('{"goAway": {"timeLeft": "-1s"}}')


@given(
    st.sampled_from([line["frame"] for line in SERVER_VALID + CLIENT_VALID]),
    strategies.json_values,
    st.lists(st.integers(0, 50), max_size=6),
    st.booleans(),
)
def test_fast_path_and_detailed_converter_agree(
    frame: dict[str, Any], junk: Any, path: list[int], snake: bool
) -> None:
    mutated = replace_somewhere(frame, junk, path)
    if not isinstance(mutated, dict):
        return  # the junk replaced the whole frame: no message kind to structure
    if snake:
        mutated = snake_keys(mutated)
    for key, body in mutated.items():
        kind = codec._SERVER_KEYS.get(key) or codec._CLIENT_KEYS.get(key)
        if kind is None:
            continue
        fast, detailed = structure_both(kind, body)
        assert fast == detailed, f"{kind}: fast {fast!r}, detailed {detailed!r}"


#: Values of every JSON type, and the edges of the scalar rules (int32, integral floats, strings, null).
EDGES = [None, True, 0, 2**31 - 1, 2**31, -(2**31) - 1, 2**63, 1.0, 2.5, "7", "", [], {}]


def leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict) and value:
        return [p for key, item in value.items() for p in leaf_paths(item, (*path, key))]
    if isinstance(value, list) and value:
        return [p for index, item in enumerate(value) for p in leaf_paths(item, (*path, index))]
    return [path]


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: replaced(value[head], rest, new)}
    return [*value[:head], replaced(value[head], rest, new), *value[head + 1 :]]


@pytest.mark.parametrize("line", SERVER_VALID + CLIENT_VALID, ids=lambda line: line["name"])
def test_fast_path_and_detailed_converter_agree_on_every_wrong_leaf(line: dict[str, Any]) -> None:
    """Every leaf of every valid fixture, replaced in turn by every edge value."""
    checked = 0
    for key, body in line["frame"].items():
        kind = codec._SERVER_KEYS.get(key) or codec._CLIENT_KEYS.get(key)
        if kind is None:
            continue
        for path in leaf_paths(body):
            for edge in EDGES:
                fast, detailed = structure_both(kind, replaced(body, path, edge))
                assert fast == detailed, f"{kind} at {path} = {edge!r}: fast {fast!r}, detailed {detailed!r}"
                checked += 1
    assert checked or line["name"].startswith("forward_compat_unknown_top")


@given(strategies.server_messages() | strategies.client_messages())
def test_fast_path_and_detailed_converter_agree_on_every_class(message: Any) -> None:
    for key, body in codec.unstructure(message).items():
        kind = codec._SERVER_KEYS.get(key) or codec._CLIENT_KEYS.get(key)
        assert kind is not None
        fast, detailed = structure_both(kind, body)
        assert fast is not REJECTED and fast == detailed


def test_only_plain_slotted_classes_are_eligible() -> None:
    @attrs.define(slots=False)
    class WithDict:
        a: str | None = None

    @attrs.frozen
    class WithValidator:
        a: str | None = attrs.field(default=None, validator=attrs.validators.instance_of(str))

    @attrs.frozen
    class WithPostInit:
        a: str | None = None

        def __attrs_post_init__(self) -> None:
            pass

    @attrs.frozen
    class Plain:
        a: str | None = None

    assert [builder_eligible(c) for c in (WithDict, WithValidator, WithPostInit, Plain)] == [
        False,
        False,
        False,
        True,
    ]


@attrs.frozen(kw_only=True)
class Sample:
    """A plain class whose second field is not an Optional: it takes the converter's hook as it is."""

    name: str | None = None
    count: wire.Int64 = None  # type: ignore[assignment]


def test_a_field_without_optional_goes_through_its_hook_unchanged() -> None:
    hook = codec._FAST.get_structure_hook(Sample)
    assert hook({"name": "a", "count": "12"}, Sample) == Sample(name="a", count=wire.Int64(12))
    assert type(hook({"count": 12}, Sample).count) is int
    with pytest.raises(ValueError, match="int64"):
        hook({"count": "twelve"}, Sample)


def test_unknown_snake_case_keys_are_ignored_beside_known_ones() -> None:
    # An unknown key with an underscore must not send the builder back to normalising for ever.
    assert wire.decode('{"serverContent": {"future_field": 1}}') == wire.ServerContent()
    message = wire.decode(
        '{"serverContent": {"future_field": 1, "turn_complete": true, "interrupted": true}}'
    )
    assert message == wire.ServerContent(turn_complete=True, interrupted=True)
    with pytest.raises(ProtocolError, match="given twice"):
        wire.decode('{"serverContent": {"turnComplete": true, "turn_complete": true}}')


# --- decode against the strict path -------------------------------------------------------------------
#
# The oracle is decode's general path (frame checks, kind dispatch, usage, unknown messages, the goAway
# rule) with cattrs' detailed converter in place of every builder: neither the builders of
# livestate.wire.fast nor decode's shortcut for the usual frame take part. On any frame, decode must give
# what the oracle gives: an equal message with leaves of the same types, or a ProtocolError with the same
# text.

SESSION_SERVER_FRAMES = [
    line["frame"]
    for path in sorted((FIXTURES / "sessions").glob("*.jsonl"))
    for line in load_jsonl(f"sessions/{path.name}")
    if line["dir"] == "server" and "frame" in line
]
FRAMES = [line["frame"] for line in SERVER_VALID] + SESSION_SERVER_FRAMES
LIBRARIES: dict[str, Callable[[bytes | str], Any]] = {"stdlib": codec.stdlib_loads}
with contextlib.suppress(ImportError):
    import orjson

    LIBRARIES = {"orjson": orjson.loads, **LIBRARIES}


def _detailed_builder(cls: type) -> Callable[..., Any]:
    def structure(body: Any, _: Any = None, usage: Any = None) -> Any:
        message = codec._DETAILED.structure(body, cls)
        return message if usage is None else attrs.evolve(message, usage_metadata=usage)

    return structure


DETAILED_HOOKS = {cls: _detailed_builder(cls) for cls in codec._FAST_HOOKS}


def strict_decode(data: bytes | str) -> Any:
    """The oracle: what the strict path makes of ``data``."""
    with mock.patch.object(codec, "_FAST_HOOKS", DETAILED_HOOKS):
        return codec._server_message(codec._load(data, codec.DEFAULT_MAX_FRAME_BYTES))


def typed(value: Any) -> Any:
    """A value with every class and leaf type spelled out (1, 1.0 and True differ; so do Duration texts)."""
    if attrs.has(type(value)):
        return (
            type(value).__qualname__,
            [(f.name, typed(getattr(value, f.name))) for f in attrs.fields(type(value))],
        )
    if isinstance(value, tuple | list):
        return (type(value).__name__, [typed(item) for item in value])
    if isinstance(value, dict):
        return ("dict", [(key, typed(item)) for key, item in value.items()])
    return (type(value).__name__, value)


def outcome(decoder: Callable[[bytes | str], Any], data: bytes | str) -> Any:
    try:
        return typed(decoder(data))
    except ProtocolError as exc:
        return ("ProtocolError", str(exc))


def assert_decode_matches_the_strict_path(data: bytes | str) -> None:
    for library, loads in LIBRARIES.items():
        with mock.patch.object(codec, "_loads", loads):
            ours, strict = outcome(wire.decode, data), outcome(strict_decode, data)
        assert ours == strict, f"{library}: decode {ours!r}, strict {strict!r}"


@pytest.mark.parametrize(
    "data",
    [invalid_frame_data(line) for line in SERVER_INVALID]
    + [json.dumps(line["frame"]) for line in SERVER_VALID],
    ids=[line["name"] for line in SERVER_INVALID + SERVER_VALID],
)
def test_decode_matches_the_strict_path_on_every_fixture(data: bytes | str) -> None:
    assert_decode_matches_the_strict_path(data)


def nested_list(depth: int) -> Any:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


#: Values at the edges of the fast path's shortcuts: every JSON type, int32 and int64 bounds and beyond,
#: integral floats, int64 decimal strings (short, long, signed, not ASCII), Durations in and out of the
#: usual form, untyped values around the depth limit, lists of strings and of objects with a wrong member.
EDGES: list[Any] = [
    *[None, True, False, 0, -1, 1.0, 2.5, -0.0, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1],
    *[2**63 - 1, 2**63, 2**64, -(2**63), -(2**63) - 1, 10**30],
    *["", "a", "7", "-7", "+7", "0042", " 7", "7 ", "1_000", "\u0663", "\uff17"],
    *["123456789012345678", "1234567890123456789", "9223372036854775807", "9223372036854775808"],
    *["0s", "10s", "0.420s", "3.000000001s", "3.0000000001s", "-1s", "-0s", "-0.5s", "1.s", ".5s"],
    *["1.5.5s", "5S", " 5s", "5s ", "+5s", "1_0s", "\u0663s", "1.\u0663s", "1e3s"],
    *["99999999999s", "99999999999.999999999s", "315576000000s", "315576000001s", "999999999999s"],
    *[{}, [], {"a": 1}, {"a": {"b": [1, {"c": None}]}}, [[]], ["a", "b"], ["a", 1], [None]],
    *[[{"text": "x"}], [{"text": 1}], [{}, {"text": "y"}], [{"function_call": {}}]],
    *[nested_list(63), nested_list(64), nested_list(65), {"x": nested_list(63)}, {"x": nested_list(64)}],
    *[[{"x": nested_list(62)}], [{"x": nested_list(63)}]],
]
JUNK = st.sampled_from(EDGES) | strategies.json_values


@st.composite
def frames(draw: st.DrawFn) -> bytes | str:
    """A fixture frame with a value replaced somewhere, perhaps snake_case keys, usage or an unknown key
    beside the kind, as compact or pretty text or UTF-8 bytes."""
    frame = replace_somewhere(
        draw(st.sampled_from(FRAMES)), draw(JUNK), draw(st.lists(st.integers(0, 50), max_size=7))
    )
    if isinstance(frame, dict):
        if draw(st.integers(0, 3)) == 0:
            frame = snake_keys(frame)
        extra = draw(
            st.sampled_from([None, "usageMetadata", "usage_metadata", "futureField", "setupComplete"])
        )
        if extra is not None:
            usage = {"totalTokenCount": 7, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 3}]}
            frame = {**frame, extra: draw(st.just(usage) | JUNK)}
    text = json.dumps(frame, indent=draw(st.sampled_from([None, 2])), ensure_ascii=draw(st.booleans()))
    return text.encode() if draw(st.booleans()) else text


@given(frames())
def test_decode_matches_the_strict_path(data: bytes | str) -> None:
    assert_decode_matches_the_strict_path(data)


#: Frames with one field of each kind the fast path takes inline; EDGE marks where the edge value goes.
EDGE_PLACES = [
    {"goAway": {"timeLeft": "EDGE"}},
    {"voiceActivity": {"type": "ACTIVITY_END", "audioOffset": "EDGE"}},
    {"sessionResumptionUpdate": {"newHandle": "h", "lastConsumedClientMessageIndex": "EDGE"}},
    {"serverContent": {"outputTranscription": {"words": [{"word": "a", "startOffset": "EDGE"}]}}},
    {"serverContent": {"turnComplete": "EDGE"}, "usageMetadata": {"totalTokenCount": "EDGE"}},
    {"serverContent": {"modelTurn": {"parts": "EDGE"}}},
    {"serverContent": {"modelTurn": {"parts": [{"text": "EDGE", "inlineData": "EDGE"}]}}},
    {"serverContent": {"groundingMetadata": "EDGE"}},
    {"toolCallCancellation": {"ids": ["a", "EDGE"]}},
    {"toolCall": {"functionCalls": [{"id": "c", "args": {"x": "EDGE"}, "partialArgs": "EDGE"}]}},
    {"error": {"code": "EDGE", "details": ["EDGE"]}},
]


def placed(value: Any, edge: Any) -> Any:
    if value == "EDGE":
        return edge
    if isinstance(value, dict):
        return {key: placed(item, edge) for key, item in value.items()}
    if isinstance(value, list):
        return [placed(item, edge) for item in value]
    return value


@pytest.mark.parametrize("edge", EDGES, ids=[f"edge{i}" for i in range(len(EDGES))])
def test_decode_matches_the_strict_path_on_every_edge_in_every_inline_field(edge: Any) -> None:
    for frame in EDGE_PLACES:
        assert_decode_matches_the_strict_path(json.dumps(placed(frame, edge)))


USUAL_DURATION = re.compile(r"[0-9]{1,11}(\.[0-9]{1,9})?s")
DURATION_TEXTS = (
    st.from_regex(r"[0-9]{1,12}(\.[0-9]{1,10})?s", fullmatch=True)
    | st.from_regex(r"[-+ ]?[0-9\u0663]{0,13}(\.[0-9]{0,10})?[sS ]?", fullmatch=True)
    | st.text(alphabet="0123456789.-+s \u0663eE_", max_size=24)
    | st.text(max_size=12)
)


@given(DURATION_TEXTS)
def test_the_usual_duration_shortcut_agrees_with_duration_parse(text: str) -> None:
    usual = usual_duration(text)
    assert (usual is not None) == bool(USUAL_DURATION.fullmatch(text))  # the usual form, and only it
    if usual is not None:
        parsed = wire.Duration.parse(text)
        assert type(usual) is wire.Duration
        assert (usual.nanos, usual.text) == (parsed.nanos, parsed.text)


def plain_nesting(value: Any) -> int:
    """How many levels of objects and arrays a JSON value nests (``[]`` is 1, a scalar 0), level by level."""
    depth, level = 0, [value]
    while containers := [c for c in level if isinstance(c, dict | list)]:
        depth += 1
        level = [v for c in containers for v in (c.values() if isinstance(c, dict) else c)]
    return depth


deep_values = st.recursive(
    st.none() | st.integers() | st.text(max_size=2),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=2), children, max_size=3)
    ),
    max_leaves=8,
)


@given(deep_values, st.integers(0, 70), st.booleans())
def test_the_depth_check_agrees_with_a_plain_count(value: Any, depth: int, in_object: bool) -> None:
    for _ in range(depth):  # wrap the value to bring it around the limit
        value = {"k": value} if in_object else [value]
    assert hooks._nested_too_deep(value) == (plain_nesting(value) > codec.MAX_NESTING_DEPTH)
