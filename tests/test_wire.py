"""The wire model and codec: fixtures, strictness, round trips, fuzzing, and the SDK cross-check."""

from __future__ import annotations

import base64
import enum
import json
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from livestate import wire
from livestate.errors import LiveStateError, ProtocolError
from livestate.testing import strategies
from livestate.wire import codec
from livestate.wire.codec import to_camel, to_snake

from conftest import load_jsonl
from frames import camelize_keys, invalid_frame_data, replace_somewhere

SERVER_VALID = load_jsonl("server_valid.jsonl")
SERVER_INVALID = load_jsonl("server_invalid.jsonl")
CLIENT_VALID = load_jsonl("client_valid.jsonl")


def by_name(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {line["name"]: line for line in lines}


# --- valid server frames ------------------------------------------------------------------------

#: Fixtures whose re-encoding differs from the input on purpose, and why.
NOT_CANONICAL = {
    "forward_compat_unknown_nested_fields": "unknown fields are dropped",
    "sessionResumptionUpdate_resumable_index_number_7": "int64 is emitted as a string",
    "snake_case_session_resumption_update": "snake_case input, camelCase output",
    "snake_case_server_content_turn_complete_usage": "snake_case input, camelCase output",
    "snake_case_go_away": "snake_case input, camelCase output",
}

EXPECTED_KIND = {
    "setupComplete": wire.SetupComplete,
    "serverContent": wire.ServerContent,
    "toolCall": wire.ToolCall,
    "toolCallCancellation": wire.ToolCallCancellation,
    "goAway": wire.GoAway,
    "sessionResumptionUpdate": wire.SessionResumptionUpdate,
    "voiceActivityDetectionSignal": wire.VoiceActivityDetectionSignal,
    "voiceActivity": wire.VoiceActivity,
    "error": wire.ServerError,
}


@pytest.fixture(params=["installed", "stdlib"])
def json_library(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the JSON library the codec chose (orjson here), then with its stdlib fallback."""
    if request.param == "stdlib":
        monkeypatch.setattr(codec, "_loads", codec.stdlib_loads)
        monkeypatch.setattr(codec, "_dumps", codec.stdlib_dumps)
    return str(request.param)


@pytest.mark.parametrize("line", SERVER_VALID, ids=lambda line: line["name"])
@pytest.mark.parametrize("form", ["compact-text", "pretty-binary"])
def test_valid_server_frame_decodes_and_round_trips(
    line: dict[str, Any], form: str, json_library: str
) -> None:
    frame = line["frame"]
    data: str | bytes = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
    if form == "pretty-binary":
        data = (json.dumps(frame, indent=2, ensure_ascii=False) + "\n").encode()
    message = wire.decode(data)
    assert wire.decode(wire.encode(message)) == message
    if line["name"] not in NOT_CANONICAL and not isinstance(message, wire.UnknownMessage):
        assert json.loads(wire.encode(message)) == frame


@pytest.mark.parametrize("line", SERVER_VALID, ids=lambda line: line["name"])
def test_valid_server_frame_has_the_kind_of_its_key(line: dict[str, Any]) -> None:
    message = wire.decode(json.dumps(line["frame"]))
    key = next(k for k in line["frame"] if k not in ("usageMetadata", "usage_metadata"))
    assert type(message) is EXPECTED_KIND.get(to_camel(key), wire.UnknownMessage)


def test_forward_compat_unknown_key_keeps_raw_frame() -> None:
    line = by_name(SERVER_VALID)["forward_compat_unknown_top_level_key_only"]
    message = wire.decode(json.dumps(line["frame"]))
    assert message == wire.UnknownMessage(keys=("liveFutureSignal",), raw=line["frame"])


def test_snake_case_frames_equal_their_camel_case_form() -> None:
    for line in SERVER_VALID:
        if line["name"].startswith("snake_case"):
            snake = wire.decode(json.dumps(line["frame"]))
            camel = wire.decode(json.dumps(camelize_keys(line["frame"])))
            assert snake == camel
            assert wire.encode(snake) == wire.encode(camel)


def test_usage_rides_along_with_the_message_kind() -> None:
    frame = by_name(SERVER_VALID)["toolCall_with_usageMetadata"]["frame"]
    message = wire.decode(json.dumps(frame))
    assert isinstance(message, wire.ToolCall)
    assert message.usage_metadata == wire.UsageMetadata(prompt_token_count=820, total_token_count=820)


def test_usage_only_frame_is_a_usage_report() -> None:
    message = wire.decode('{"usageMetadata": {"totalTokenCount": 9}}')
    assert message == wire.UsageReport(usage_metadata=wire.UsageMetadata(total_token_count=9))
    assert json.loads(wire.encode(message)) == {"usageMetadata": {"totalTokenCount": 9}}


def test_response_tokens_under_either_backend_name() -> None:
    names = by_name(SERVER_VALID)
    gemini = wire.decode(json.dumps(names["serverContent_turnComplete_usage_gemini_text"]["frame"]))
    vertex_frame = names["serverContent_turnComplete_usage_vertex_candidatesTokenCount"]["frame"]
    vertex = wire.decode(json.dumps(vertex_frame))
    assert gemini.usage_metadata is not None and vertex.usage_metadata is not None
    assert gemini.usage_metadata.response_tokens == 38
    assert vertex.usage_metadata.response_tokens == vertex_frame["usageMetadata"]["candidatesTokenCount"]


@pytest.mark.parametrize(
    ("text", "nanos"),
    [("50s", 50 * 10**9), ("9.5s", 9_500_000_000), ("3.000000001s", 3_000_000_001), ("0s", 0)],
)
def test_duration_parses_to_exact_nanoseconds(text: str, nanos: int) -> None:
    message = wire.decode(json.dumps({"goAway": {"timeLeft": text}}))
    assert isinstance(message, wire.GoAway) and message.time_left is not None
    assert message.time_left.nanos == nanos
    assert message.time_left.text == text


@given(st.integers(-(10**20), 10**20))
def test_duration_text_round_trips_nanoseconds(nanos: int) -> None:
    duration = wire.Duration.from_nanos(nanos)
    assert wire.Duration.parse(duration.text) == duration
    assert wire.Duration.parse(duration.text).nanos == nanos


def test_index_accepted_as_string_or_number() -> None:
    names = by_name(SERVER_VALID)
    as_string = wire.decode(json.dumps(names["sessionResumptionUpdate_resumable_index_string_7"]["frame"]))
    as_number = wire.decode(json.dumps(names["sessionResumptionUpdate_resumable_index_number_7"]["frame"]))
    assert as_string == as_number
    assert isinstance(as_string, wire.SessionResumptionUpdate)
    assert as_string.last_consumed_client_message_index == 7


def test_audio_stays_base64_text_with_a_lazy_bytes_accessor() -> None:
    frame = by_name(SERVER_VALID)["serverContent_modelTurn_audio_gemini_no_role"]["frame"]
    message = wire.decode(json.dumps(frame))
    assert isinstance(message, wire.ServerContent)
    assert message.model_turn is not None and message.model_turn.parts is not None
    blob = message.model_turn.parts[0].inline_data
    assert blob is not None
    expected = frame["serverContent"]["modelTurn"]["parts"][0]["inlineData"]["data"]
    assert blob.data == expected
    assert blob.payload() == base64.b64decode(expected)
    assert expected not in repr(blob)


def test_handles_never_appear_in_a_repr() -> None:
    handle = "0a1f0c2e-bcc0-4711-97b2-ebdb1fc5d2bb"
    update = wire.decode(json.dumps({"sessionResumptionUpdate": {"newHandle": handle, "resumable": True}}))
    setup = wire.Setup(model="m", session_resumption=wire.SessionResumptionConfig(handle=handle))
    for obj in (update, setup):
        assert handle not in repr(obj)
        assert handle not in str(obj)


# --- invalid server frames ----------------------------------------------------------------------

#: The wire path each hostile frame's error must name (frames without a field say "frame:").
ERROR_PATH = {
    "setupComplete_not_object": "setupComplete:",
    "serverContent_is_array": "serverContent:",
    "turnComplete_string": "serverContent.turnComplete:",
    "resumable_maybe": "sessionResumptionUpdate.resumable:",
    "index_not_numeric_string": "sessionResumptionUpdate.lastConsumedClientMessageIndex:",
    "index_negative_number": "sessionResumptionUpdate.lastConsumedClientMessageIndex:",
    "index_negative_string": "sessionResumptionUpdate.lastConsumedClientMessageIndex:",
    "index_fractional": "sessionResumptionUpdate.lastConsumedClientMessageIndex:",
    "index_beyond_int64_string": "sessionResumptionUpdate.lastConsumedClientMessageIndex:",
    "index_beyond_int64_number": "sessionResumptionUpdate.lastConsumedClientMessageIndex:",
    "newHandle_number": "sessionResumptionUpdate.newHandle:",
    "timeLeft_words": "goAway.timeLeft:",
    "timeLeft_negative": "goAway.timeLeft:",
    "timeLeft_number": "goAway.timeLeft:",
    "timeLeft_no_suffix": "goAway.timeLeft:",
    "timeLeft_ms_unit": "goAway.timeLeft:",
    "timeLeft_out_of_range": "goAway.timeLeft:",
    "functionCalls_not_list": "toolCall.functionCalls:",
    "functionCalls_item_not_object": "toolCall.functionCalls[0]:",
    "functionCall_args_not_object": "toolCall.functionCalls[0].args:",
    "cancellation_ids_contains_number": "toolCallCancellation.ids[1]:",
    "cancellation_ids_not_list": "toolCallCancellation.ids:",
    "inlineData_data_number": "serverContent.modelTurn.parts[0].inlineData.data:",
    "usage_count_not_integer": "usageMetadata.totalTokenCount:",
    "deeply_nested_junk_parts": "serverContent.modelTurn.parts[0]:",
}


@pytest.mark.parametrize("line", SERVER_INVALID, ids=lambda line: line["name"])
def test_invalid_server_frame_raises_protocol_error_naming_the_field(
    line: dict[str, Any], json_library: str
) -> None:
    with pytest.raises(ProtocolError) as info:
        wire.decode(invalid_frame_data(line))
    assert str(info.value).startswith(ERROR_PATH.get(line["name"], "frame:")), str(info.value)


def test_int64_error_message_matches_the_design() -> None:
    frame = {"sessionResumptionUpdate": {"lastConsumedClientMessageIndex": "abc"}}
    with pytest.raises(
        ProtocolError,
        match=r"^sessionResumptionUpdate\.lastConsumedClientMessageIndex: "
        r"expected a non-negative int64, got 'abc'$",
    ):
        wire.decode(json.dumps(frame))


def test_two_megabyte_frame_rejected_by_the_cap_and_decoded_above_it() -> None:
    line = by_name(SERVER_INVALID)["generate_huge_string_2mb"]
    data = invalid_frame_data(line)
    with pytest.raises(ProtocolError, match="exceeds the 1048576-byte limit"):
        wire.decode(data)
    message = wire.decode(data, max_size=4 << 20)
    assert isinstance(message, wire.ServerContent)
    assert message.model_turn is not None and message.model_turn.parts is not None
    assert message.model_turn.parts[0].text == "A" * 2_000_000


def test_strict_booleans_reject_the_python_fixture_string_form() -> None:
    with pytest.raises(ProtocolError, match="resumable: expected a boolean, got 'true'"):
        wire.decode('{"sessionResumptionUpdate": {"newHandle": "h", "resumable": "true"}}')


def test_the_same_field_under_both_spellings_is_rejected_at_any_depth() -> None:
    with pytest.raises(ProtocolError, match="serverContent: field 'turnComplete' given twice"):
        wire.decode('{"serverContent": {"turnComplete": true, "turn_complete": false}}')


# --- limits both JSON libraries share ------------------------------------------------------------


def nested_list(depth: int) -> str:
    """JSON text of a list nesting ``depth`` levels (``[[]]`` is 2), written directly: json.dumps recurses."""
    return "[" * depth + "]" * depth


#: Frames with an untyped value (``{"x": <list>}``, or the list itself) nesting ``depth`` levels, and the
#: error path naming where.
DEEP_VALUES = {
    "grounding": (
        '{{"serverContent": {{"turnComplete": true, "groundingMetadata": {{"x": {list}}}}}}}',
        "serverContent.groundingMetadata: nested more than 64 levels deep",
    ),
    "args": (
        '{{"toolCall": {{"functionCalls": [{{"id": "c1", "name": "f", "args": {{"x": {list}}}}}]}}}}',
        "toolCall.functionCalls[0].args: nested more than 64 levels deep",
    ),
    "error_details": (
        '{{"error": {{"code": 3, "details": [{{"x": {list}}}]}}}}',
        "error.details[0]: nested more than 64 levels deep",
    ),
    "unknown_message": (
        '{{"liveFutureSignal": {{"x": {list}}}}}',
        "frame: unknown message 'liveFutureSignal' nested more than 64 levels deep",
    ),
}


@pytest.mark.parametrize("place", DEEP_VALUES)
def test_untyped_values_nest_at_most_the_depth_limit(place: str, json_library: str) -> None:
    template, error = DEEP_VALUES[place]
    assert codec.MAX_NESTING_DEPTH == 64
    deepest = wire.decode(template.format(list=nested_list(63)))  # 64 levels, counting {"x": ...}
    assert wire.decode(wire.encode(deepest)) == deepest
    for depth in (64, 500, 1010):  # past the limit; 1010 is past the stdlib parser's recursion limit too
        with pytest.raises(ProtocolError) as info:
            wire.decode(template.format(list=nested_list(depth)))
        assert str(info.value).startswith(error if depth < 1000 else ("frame:", error)), str(info.value)


def test_the_depth_limit_counts_setup_fields_kept_as_extra(json_library: str) -> None:
    frame = '{{"setup": {{"model": "m", "generationConfig": {{"x": {list}}}}}}}'
    assert isinstance(wire.decode_client(frame.format(list=nested_list(63))), wire.Setup)
    with pytest.raises(ProtocolError, match=r"^setup: field 'generationConfig' nested more than 64 levels"):
        wire.decode_client(frame.format(list=nested_list(64)))


def test_a_deep_value_in_a_dropped_field_is_not_kept_so_not_limited(json_library: str) -> None:
    frame = '{{"serverContent": {{"turnComplete": true, "futureField": {list}}}}}'
    assert wire.decode(frame.format(list=nested_list(500))) == wire.ServerContent(turn_complete=True)


LONE_SURROGATES = [
    r'{"serverContent": {"modelTurn": {"parts": [{"text": "a\ud800"}]}}}',
    r'{"serverContent": {"outputTranscription": {"text": "\udc00b"}}}',
    r'{"serverContent": {"turnComplete": true, "groundingMetadata": {"\udbff": 1}}}',
    r'{"liveFutureSignal": [["\udfff"]]}',
    r'{"serverContent": {"turnComplete": true, "futureField": "\ud800"}}',  # dropped, still rejected
    r'{"serverContent": {"turnComplete": "\ud800", "turnComplete": true}}',  # overwritten, still rejected
    r'{"sessionResumptionUpdate": {"newHandle": "\ude00\ud83d", "resumable": true}}',  # a pair backwards
]


@pytest.mark.parametrize("frame", LONE_SURROGATES)
def test_lone_surrogates_are_rejected_by_both_json_libraries(frame: str, json_library: str) -> None:
    raw = frame.encode().decode("unicode_escape")  # the surrogate itself in a str, not escaped
    for data in (frame, frame.encode(), raw):
        with pytest.raises(ProtocolError, match=r"^frame: not valid JSON"):
            wire.decode(data)


def test_a_lone_surrogate_cannot_be_encoded_either(json_library: str) -> None:
    with pytest.raises(TypeError, match="surrogates not allowed"):
        wire.encode(wire.RealtimeInput(text="a\ud800"))
    assert json.loads(wire.encode(wire.RealtimeInput(text="\U0001f600"))) == {
        "realtimeInput": {"text": "\U0001f600"}
    }


def test_an_escaped_surrogate_pair_is_one_character(json_library: str) -> None:
    message = wire.decode(r'{"serverContent": {"outputTranscription": {"text": "\ud83d\ude00"}}}')
    assert message == wire.decode('{"serverContent": {"outputTranscription": {"text": "😀"}}}')


def test_numbers_beyond_the_float_range_are_rejected_by_both_json_libraries(json_library: str) -> None:
    frame = '{{"toolCall": {{"functionCalls": [{{"id": "c1", "name": "f", "args": {{"x": {number}}}}}]}}}}'
    message = wire.decode(frame.format(number="-1.5e308"))
    assert isinstance(message, wire.ToolCall) and message.function_calls is not None
    assert message.function_calls[0].args == {"x": -1.5e308}
    for number in ("1e400", "-1e400", "1.0e309"):
        with pytest.raises(ProtocolError, match=r"^frame: not valid JSON"):
            wire.decode(frame.format(number=number))


def test_structure_knows_the_direction_when_told() -> None:
    frame = {"setup": {"model": "m"}}  # from a server, an unknown message
    assert codec.structure_server(frame) == wire.UnknownMessage(keys=("setup",), raw=frame)
    assert codec.structure_client(frame) == wire.Setup(model="m")
    with pytest.raises(ProtocolError, match="expected one of setup"):
        codec.structure_client({"setupComplete": {}})


# --- client frames ------------------------------------------------------------------------------


@pytest.mark.parametrize("line", CLIENT_VALID, ids=lambda line: line["name"])
def test_client_frame_round_trips(line: dict[str, Any]) -> None:
    message = wire.decode_client(json.dumps(line["frame"]))
    assert wire.decode_client(wire.encode(message)) == message
    expected = line["frame"]
    if line["name"].startswith("realtimeInput_snake_case"):
        expected = camelize_keys(expected)
    assert json.loads(wire.encode(message)) == expected


def test_setup_types_the_lifecycle_fields_and_passes_the_rest_through() -> None:
    line = by_name(CLIENT_VALID)["setup_full_gemini_audio_agent"]
    setup = wire.decode_client(json.dumps(line["frame"]))
    assert isinstance(setup, wire.Setup)
    raw = line["frame"]["setup"]
    assert setup.extra["generationConfig"] == raw["generationConfig"]
    assert set(setup.extra) == {k for k in raw if to_snake(k) not in attrs.fields_dict(wire.Setup)}


def test_setup_with_handle_and_transparent() -> None:
    line = by_name(CLIENT_VALID)["setup_sessionResumption_handle_transparent_vertex"]
    setup = wire.decode_client(json.dumps(line["frame"]))
    assert isinstance(setup, wire.Setup) and setup.session_resumption is not None
    assert setup.session_resumption.handle == "vtx-h-7b1d2c"
    assert setup.session_resumption.transparent is True


def test_empty_session_resumption_is_sent_as_an_empty_object() -> None:
    setup = wire.Setup(model="models/x", session_resumption=wire.SessionResumptionConfig())
    assert json.loads(wire.encode(setup)) == {"setup": {"model": "models/x", "sessionResumption": {}}}


# --- properties ---------------------------------------------------------------------------------


@given(strategies.server_messages())
def test_every_server_message_round_trips(message: wire.ServerMessage) -> None:
    assert wire.decode(wire.encode(message)) == message


@given(strategies.client_messages())
def test_every_client_message_round_trips(message: wire.ClientMessage) -> None:
    assert wire.decode_client(wire.encode(message)) == message


@given(
    st.sampled_from([line["frame"] for line in SERVER_VALID]),
    strategies.json_values,
    st.lists(st.integers(0, 50), max_size=6),
)
def test_mutated_frames_decode_or_raise_protocol_error(frame: Any, junk: Any, path: list[int]) -> None:
    mutated = replace_somewhere(frame, junk, path)
    try:
        message = wire.decode(json.dumps(mutated))
    except ProtocolError:
        return
    assert wire.decode(wire.encode(message)) == message


@given(st.binary(max_size=200) | st.text(max_size=200) | strategies.json_values.map(json.dumps))
def test_garbage_raises_only_protocol_error(data: bytes | str) -> None:
    try:
        wire.decode(data)
    except ProtocolError:
        pass
    except LiveStateError as exc:  # pragma: no cover - would be a bug
        pytest.fail(f"wrong error type {type(exc)}")


# --- cross-check against google-genai's own parser ----------------------------------------------


def _same(ours: Any, theirs: Any, path: str) -> list[str]:
    """Differences between a livestate value and the SDK's value for the same field."""
    if ours is None or theirs is None:
        return [] if ours is None and theirs is None else [f"{path}: {ours!r} != {theirs!r}"]
    if isinstance(ours, wire.Duration):
        return [] if ours.text == theirs else [f"{path}: {ours.text} != {theirs}"]
    if attrs.has(type(ours)):
        problems = []
        for field in attrs.fields(type(ours)):
            sdk_name = {"type": "voice_activity_type"}.get(field.name, field.name)
            if field.name in ("candidates_token_count", "candidates_tokens_details"):
                sdk_name = field.name.replace("candidates", "response")
                if getattr(ours, field.name) is None:
                    continue
            elif field.name.startswith("response_token") and ours.candidates_token_count is not None:
                continue
            theirs_value = getattr(theirs, sdk_name, None)
            problems += _same(getattr(ours, field.name), theirs_value, f"{path}.{field.name}")
        return problems
    if isinstance(ours, tuple):
        if len(ours) != len(theirs):
            return [f"{path}: {len(ours)} items != {len(theirs)}"]
        return [
            p for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) for p in _same(a, b, f"{path}[{i}]")
        ]
    if isinstance(theirs, bytes):
        return [] if base64.b64decode(ours) == theirs else [f"{path}: payload differs"]
    if isinstance(theirs, enum.Enum):
        theirs = theirs.value
    if isinstance(ours, dict) and not isinstance(theirs, dict):
        theirs = theirs.model_dump(mode="json", by_alias=True, exclude_none=True)
    return [] if ours == theirs else [f"{path}: {ours!r} != {theirs!r}"]


SDK_COMPARABLE = [
    line
    for line in SERVER_VALID
    if not line["name"].startswith(("snake_case", "error_in_band", "forward_compat_unknown_top"))
]


@pytest.mark.parametrize("line", SDK_COMPARABLE, ids=lambda line: line["name"])
def test_livestate_and_google_genai_agree_on_every_field(line: dict[str, Any]) -> None:
    sdk_reference = pytest.importorskip("sdk_reference")
    vertex = "vertex" in line["name"]
    theirs = sdk_reference.sdk_parse(line["frame"], vertex=vertex)
    ours = wire.decode(json.dumps(line["frame"]))
    kind = next(k for k in line["frame"] if k != "usageMetadata")
    theirs_kind = getattr(theirs, to_snake(kind))
    assert theirs_kind is not None
    problems = _same(attrs.evolve(ours, usage_metadata=None), theirs_kind, kind)
    problems += _same(ours.usage_metadata, theirs.usage_metadata, "usageMetadata")
    assert problems == []


def test_the_cross_check_notices_a_disagreement() -> None:
    sdk_reference = pytest.importorskip("sdk_reference")
    frame = {"goAway": {"timeLeft": "9.5s"}}
    theirs = sdk_reference.sdk_parse(frame, vertex=False).go_away
    assert _same(wire.GoAway(time_left=wire.Duration.parse("9.5s")), theirs, "goAway") == []
    assert _same(wire.GoAway(time_left=wire.Duration.parse("9.6s")), theirs, "goAway") != []


SDK_TWINS = [
    ("LiveServerContent", wire.ServerContent),
    ("Transcription", wire.Transcription),
    ("UsageMetadata", wire.UsageMetadata),
    ("FunctionCall", wire.FunctionCall),
    ("FunctionResponse", wire.FunctionResponse),
    ("LiveServerSetupComplete", wire.SetupComplete),
    ("LiveServerSessionResumptionUpdate", wire.SessionResumptionUpdate),
    ("LiveServerGoAway", wire.GoAway),
    ("LiveServerToolCall", wire.ToolCall),
    ("LiveServerToolCallCancellation", wire.ToolCallCancellation),
    ("Part", wire.Part),
    ("Content", wire.Content),
    ("Blob", wire.Blob),
    ("FileData", wire.FileData),
    ("ExecutableCode", wire.ExecutableCode),
    ("CodeExecutionResult", wire.CodeExecutionResult),
    ("LiveClientRealtimeInput", wire.RealtimeInput),
    ("LiveClientContent", wire.ClientContent),
    ("LiveClientToolResponse", wire.ToolResponse),
    ("AutomaticActivityDetection", wire.AutomaticActivityDetection),
    ("RealtimeInputConfig", wire.RealtimeInputConfig),
    ("SessionResumptionConfig", wire.SessionResumptionConfig),
    ("ContextWindowCompressionConfig", wire.ContextWindowCompression),
    ("WordInfo", wire.WordInfo),
    ("UrlMetadata", wire.UrlMetadata),
]


@pytest.mark.parametrize(("sdk_name", "ours"), SDK_TWINS, ids=[name for name, _ in SDK_TWINS])
def test_every_field_the_sdk_knows_is_a_field_here(sdk_name: str, ours: type) -> None:
    types = pytest.importorskip("google.genai.types")
    renamed = {"voice_activity_type": "type"}
    sdk_fields = {renamed.get(f, f) for f in getattr(types, sdk_name).model_fields}
    assert sdk_fields - {a.name for a in attrs.fields(ours)} == set()


# --- the stdlib JSON fallback -------------------------------------------------------------------


def _reference_loads(data: bytes | str) -> Any:
    """json.loads, rejecting what orjson rejects: NaN, infinite numbers and lone surrogates."""

    def reject(name: str) -> Any:
        raise ValueError(name)

    def integer(text: str) -> int | float:  # orjson keeps 64-bit integers (signed or unsigned), floats others
        number = int(text)
        return number if -(2**63) <= number <= 2**64 - 1 else float(text)

    value = json.loads(data, parse_constant=reject, parse_int=integer)
    # Checked another way than stdlib_loads does: an infinite number does not write back as JSON
    # (ValueError), a lone surrogate does not encode as UTF-8 (UnicodeEncodeError, a ValueError).
    json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    return value


def _outcome(loads: Any, data: bytes | str) -> Any:
    try:
        return ("value", loads(data))
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return ("error", None)


@pytest.mark.parametrize(
    "data",
    [
        '{"a": 1}',
        '  \n{"a": 1}',
        '{"a": 1}\n\t ',
        '{"a": 1} x',
        '{"a": 1}{"b": 2}',
        '{"a": 1}\u00a0',  # not JSON whitespace
        "",
        "   ",
        '{"a": NaN}',
        "-Infinity",
        '{"a": 1e400}',
        "[-1e999]",
        '{"a": 1.5e308}',
        r'{"a": "\ud800"}',
        r'["x", {"\udfff": 1}]',
        r'"\ud83d"',
        r'"\ud83d\ude00"',
        '{"a": "\ud800"}',
        '"text"',
        "[1, 2]",
        b'{"a": "\xc3\xa9"}',
        b'{"a": "\xff"}',
    ],
)
def test_stdlib_loads_agrees_with_json_loads(data: bytes | str) -> None:
    if isinstance(data, bytes) and b"\xff" in data:
        with pytest.raises(UnicodeDecodeError):
            codec.stdlib_loads(data)
        return
    assert _outcome(codec.stdlib_loads, data) == _outcome(_reference_loads, data)


@given(st.text(max_size=40) | strategies.json_values.map(json.dumps) | st.sampled_from(["{} ", " []", "1 2"]))
def test_stdlib_loads_agrees_with_json_loads_on_any_text(data: str) -> None:
    assert _outcome(codec.stdlib_loads, data) == _outcome(_reference_loads, data)


def _typed(value: Any) -> Any:
    """A value with the type of every leaf spelled out, so 1 and 1.0 differ."""
    if isinstance(value, dict):
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_typed(item) for item in value]
    return (type(value).__name__, value)


EDGE_NUMBERS = [
    "0", "-0", "-0.0", "1e-400", "1.5e308", "1e309", "-1e400", "1" + "0" * 308, "1" + "0" * 309, "9" * 5000,
    str(2**63 - 1), str(-(2**63)), str(-(2**63) - 1), str(2**64 - 1), str(2**64), "9" * 18, "-" + "9" * 18,
    "9" * 19, "-" + "9" * 19, "12345678901234567890123",
]  # fmt: skip
EDGE_STRINGS = [
    r'"\ud800"', r'"\udc00"', r'"\ud83d\ude00"', r'"\ude00\ud83d"', r'"\ud83d\ud83d\ude00"', r'"\ud83d\u0041"',
    r'"\\ud800"', r'"\\\ud800"', r'"\\\\ud800"', r'"\ud83d\\ude00"', r'"\uD83D\uDE00"', r'"\uDBFF"',
    '"\ud800"', '"\ud83d\ude00"', '"\ufeff"',
]  # fmt: skip


#: Where an edge value goes: alone, in a list, as a value, as a key, in whitespace, under a duplicate key.
EDGE_PLACES = ["{}", "[{}]", '{{"k": {}}}', "{{{}: 1}}", " {} ", '{{"k": {}, "k": 1}}', '{{"k": 1, "k": {}}}']


def assert_stdlib_loads_gives_what_orjson_gives(data: str) -> None:
    orjson = pytest.importorskip("orjson")
    for text in (data, data.encode("utf-8", "surrogatepass")):
        ours, theirs = _outcome(codec.stdlib_loads, text), _outcome(orjson.loads, text)
        assert ours[0] == theirs[0], (text, ours, theirs)
        assert _typed(ours[1]) == _typed(theirs[1])


@pytest.mark.parametrize("edge", EDGE_NUMBERS + EDGE_STRINGS + ["\ufeff{}", "{}\x00", '"\x1f"'])
def test_stdlib_loads_gives_what_orjson_gives_at_the_edges(edge: str) -> None:
    for place in EDGE_PLACES:
        assert_stdlib_loads_gives_what_orjson_gives(place.format(edge))


@given(st.text(max_size=40) | strategies.json_values.map(json.dumps))
def test_stdlib_loads_gives_what_orjson_gives(data: str) -> None:
    assert_stdlib_loads_gives_what_orjson_gives(data)


def test_encoding_the_same_realtime_input_again_gives_the_same_frame_and_other_kinds_are_encoded_afresh() -> (
    None
):
    from livestate import wire as w

    chunk = w.RealtimeInput(audio=w.Blob(mime_type="audio/pcm", data="AAAA"))
    first = w.encode(chunk)
    assert w.encode(chunk) is first  # the second encode reuses the frame
    assert w.encode(w.RealtimeInput(audio=w.Blob(mime_type="audio/pcm", data="AAAB"))) != first
    answer = {"ok": True}
    response = w.ToolResponse(function_responses=(w.FunctionResponse(id="c", name="f", response=answer),))
    before = w.encode(response)
    answer["ok"] = False  # an application may change a dict it still holds: the next frame says so
    assert w.encode(response) != before and '"ok":false' in w.encode(response)
