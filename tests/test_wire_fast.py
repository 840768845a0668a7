"""The decoder's fast path: genuine frozen objects, and exact agreement with cattrs' detailed converter."""

from __future__ import annotations

import copy
import json
import pickle
import weakref
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from livestate import wire
from livestate.errors import ProtocolError
from livestate.testing import strategies
from livestate.wire import codec
from livestate.wire.codec import to_snake
from livestate.wire.fast import builder_eligible

from conftest import load_jsonl
from frames import replace_somewhere

SERVER_VALID = load_jsonl("server_valid.jsonl")
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
