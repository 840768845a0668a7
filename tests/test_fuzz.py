"""Fuzzing the inbound path: ``Session.receive`` with a ``Journal`` attached, under both JSON libraries.

Frames are the valid fixtures (``server_valid.jsonl`` and the server side of every session script),
mutated: nesting around and far past the depth limit, lone surrogates, numbers beyond 64 bits and beyond
the float range, wrong types, dropped, duplicated, renamed and snake_case keys, other message kinds,
truncation, random bytes. Whatever arrives:

- only ``ProtocolError`` escapes ``receive``;
- a rejected frame leaves the session's snapshot and its journal exactly as they were;
- the journal of what was accepted replays to the live session's snapshot;
- orjson and the standard-library fallback accept the same frames and decode them to equal messages, leaf
  types included;
- no untyped value in a decoded message nests deeper than ``MAX_NESTING_DEPTH``.

Now and then the application sends a message instead (any text, lone surrogates too, or a function
response nested around the limit): ``UsageError`` may escape ``send``, or ``RecordingError`` from a journal
that could not read the message back, with the same guarantees.

The journal writes to bytes, as to a file it creates, so a line a real file could not hold fails here.
``EXAMPLES`` scales with the hypothesis profile (``HYPOTHESIS_PROFILE=thorough`` runs more).
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from typing import IO, Any
from unittest import mock

import attrs
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from livestate import Session, events, journal, wire
from livestate.errors import ProtocolError, RecordingError, UsageError
from livestate.testing import strategies
from livestate.wire import codec
from livestate.wire.codec import to_snake

from conftest import FIXTURES, load_jsonl
from helpers import config

#: Examples per JSON library: eight times the profile's default (ci: 1,200; thorough: 40,000).
EXAMPLES = settings().max_examples * 8
LIBRARIES: dict[str, Callable[[bytes | str], Any]] = {"stdlib": codec.stdlib_loads}
with contextlib.suppress(ImportError):
    import orjson

    LIBRARIES = {"orjson": orjson.loads, **LIBRARIES}

VALID: list[Any] = [line["frame"] for line in load_jsonl("server_valid.jsonl")] + [
    line["frame"]
    for path in sorted((FIXTURES / "sessions").glob("*.jsonl"))
    for line in load_jsonl(f"sessions/{path.name}")
    if line["dir"] == "server" and "frame" in line
]

#: How each example starts, before the fuzzed frames: (Vertex transparent?, server frames and client sends).
PREFIXES: dict[str, tuple[bool, list[str | wire.ClientMessage]]] = {
    "live": (False, ['{"setupComplete": {}}']),
    "resumable": (
        False,
        ['{"setupComplete": {}}', '{"sessionResumptionUpdate": {"newHandle": "h-1", "resumable": true}}'],
    ),
    "going_away": (
        False,
        [
            '{"setupComplete": {}}',
            '{"sessionResumptionUpdate": {"newHandle": "h-1", "resumable": true}}',
            '{"goAway": {"timeLeft": "10s"}}',
        ],
    ),
    "tool_call": (
        False,
        ['{"setupComplete": {}}', '{"toolCall": {"functionCalls": [{"id": "c1", "name": "f"}]}}'],
    ),
    "vertex_sent": (
        True,
        [
            '{"setupComplete": {}}',
            wire.RealtimeInput(text="one"),
            wire.RealtimeInput(text="two"),
            '{"sessionResumptionUpdate": {"newHandle": "v-1", "resumable": true, '
            '"lastConsumedClientMessageIndex": "0"}}',
        ],
    ),
}

KINDS = [*codec._SERVER_KINDS, *codec._CLIENT_KINDS, "usageMetadata", "liveFutureSignal"]
#: Keys a renamed key may take: every message kind, field names the session or the journal looks at.
KEYS = [
    *KINDS,
    *map(to_snake, KINDS),
    *["newHandle", "new_handle", "handle", "resumable", "lastConsumedClientMessageIndex", "timeLeft"],
    *["turnComplete", "interrupted", "functionCalls", "id", "ids", "data", "redactedLength", ""],
]
SCALARS = st.sampled_from([
    None, True, False, "", "x", "9.5s", "-1s", "0s", "7", "-3", "abc", 0, -1, 7, 1.5, -0.0, 2**31, 2**63, [], {},
])  # fmt: skip
#: JSON number texts at the edges of int32, int64, uint64 and the float range.
NUMBERS = [
    *["2147483648", "9223372036854775807", "9223372036854775808", "-9223372036854775809"],
    *["18446744073709551616", "1" + "0" * 308, "1" + "0" * 309, "9" * 5000],
    *["1e309", "-1e400", "1.7976931348623157e308", "4e-400", "1.0"],
]
#: JSON string texts: lone surrogates escaped or raw, valid pairs, escaped backslashes before "ud800".
SURROGATES = [
    r'"\ud800"', r'"a\udc00"', r'"\ude00\ud83d"', r'"\ud83d\ude00"', r'"\\ud800"', r'"\\\ud800"',
    r'"\ud83d\\ude00"', '"\ud800"', '"x\udfff"', '"\ud83d\ude00"',
]  # fmt: skip
DEPTHS = st.sampled_from([63, 64, 65, 100, 500, 1100]) | st.integers(1, 70)
#: Keys some message keeps untyped (a Part's, a function call's, an unknown message's...).
OPAQUE_KEYS = [
    "groundingMetadata", "args", "response", "details", "videoMetadata", "toolCall", "liveFutureSignal",
]  # fmt: skip
#: The untyped field of an object, by the key the object sits under (directly or in a list).
OPAQUE_BY_PARENT = {"serverContent": "groundingMetadata", "functionCalls": "args", "parts": "videoMetadata"}
OPAQUE_DEPTHS = st.sampled_from([64, 65]) | st.sampled_from([1, 2, 63, 66, 100, 500])
#: Text an application may send: anything a Python str holds, lone surrogates too.
SENT_TEXT = st.text(max_size=8) | st.sampled_from(["\ud800", "a\udfff", "\ude00\ud83d", "\U0001f600", "\x00"])

REJECTED = object()


@attrs.define
class Frame:
    """A frame being mutated: a JSON value whose placeholder strings stand for raw JSON texts (a nesting
    json.dumps cannot write, a lone surrogate, a number Python would print differently)."""

    value: Any
    splices: list[tuple[str, str]] = attrs.field(factory=list)
    #: The deepest nesting spliced in: past a few hundred levels each JSON library's own limit decides.
    depth: int = 0

    def splice(self, text: str) -> str:
        placeholder = f"\x00fuzz{len(self.splices)}\x00"
        self.splices.append((placeholder, text))
        return placeholder

    def render(self, *, indent: int | None, ensure_ascii: bool) -> str:
        text = json.dumps(self.value, indent=indent, ensure_ascii=ensure_ascii)
        for placeholder, raw in reversed(self.splices):  # a later splice may hold an earlier placeholder
            text = text.replace(json.dumps(placeholder), raw)
        return text


def locations(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every value in a JSON document, the root first."""
    out = [here]
    if isinstance(value, dict):
        for key, item in value.items():
            out += locations(item, (*here, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += locations(item, (*here, index))
    return out


def get_at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def set_at(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: set_at(value[head], rest, new)}
    return [*value[:head], set_at(value[head], rest, new), *value[head + 1 :]]


def nested(depth: int, draw: st.DrawFn) -> str:
    """JSON text of an array or an object nesting ``depth`` levels."""
    if draw(st.booleans()):
        return "[" * depth + "]" * depth
    return '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)


def parent_key(path: tuple[Any, ...]) -> Any:
    """The key an object at ``path`` sits under, directly or as an item of a list."""
    return next((step for step in reversed(path) if isinstance(step, str)), None)


MUTATIONS = [
    "value", "scalar", "number", "deep", "surrogate", "opaque", "drop", "duplicate", "rename", "snake", "kind",
]  # fmt: skip


def mutate(draw: st.DrawFn, frame: Frame) -> None:
    """Apply one drawn mutation to ``frame``."""
    paths = locations(frame.value)
    dicts = [p for p in paths if isinstance(get_at(frame.value, p), dict)]
    objects = [p for p in dicts if get_at(frame.value, p)]
    kind = draw(st.sampled_from(MUTATIONS))
    path = draw(st.sampled_from(paths))
    if kind == "value":
        frame.value = set_at(frame.value, path, draw(strategies.json_values))
    elif kind == "scalar":
        frame.value = set_at(frame.value, path, draw(SCALARS))
    elif kind == "number":
        frame.value = set_at(frame.value, path, frame.splice(draw(st.sampled_from(NUMBERS))))
    elif kind == "deep":  # anywhere: in a typed field, an ignored one, an untyped one
        depth = draw(DEPTHS)
        frame.depth = max(frame.depth, depth)
        frame.value = set_at(frame.value, path, frame.splice(nested(depth, draw)))
    elif kind == "surrogate":
        frame.value = set_at(frame.value, path, frame.splice(draw(st.sampled_from(SURROGATES))))
    elif kind == "opaque" and dicts:  # under a key some message keeps untyped
        kept = [p for p in dicts if parent_key(p) in OPAQUE_BY_PARENT]
        if kept and draw(st.booleans()):  # surely kept: an object nesting right around the limit
            where = draw(st.sampled_from(kept))
            key, depth = OPAQUE_BY_PARENT[parent_key(where)], draw(OPAQUE_DEPTHS)
            value: Any = frame.splice(f'{{"a": {nested(depth - 1, draw)}}}' if depth > 1 else "{}")
        else:
            where = draw(st.sampled_from(dicts))
            key, depth = draw(st.sampled_from(OPAQUE_KEYS)), draw(DEPTHS)
            shape = draw(st.sampled_from(["deep", "edge", "json"]))
            if shape == "deep":
                value = frame.splice(nested(depth, draw))
            elif shape == "edge":
                value = {"a": frame.splice(draw(st.sampled_from(NUMBERS + SURROGATES)))}
            else:
                value = draw(strategies.json_values)
        frame.depth = max(frame.depth, depth)
        frame.value = set_at(frame.value, where, {**get_at(frame.value, where), key: value})
    elif objects:
        where = draw(st.sampled_from(objects))
        obj = get_at(frame.value, where)
        key = draw(st.sampled_from(list(obj)))
        replacement: Any
        if kind == "drop":
            replacement = {k: v for k, v in obj.items() if k != key}
        elif kind == "duplicate":  # the same key twice, as JSON text allows: the parsers keep the last
            twin = draw(st.just(obj[key]) | SCALARS | strategies.json_values)
            entries = [json.dumps(obj)[1:-1], f"{json.dumps(key)}: {json.dumps(twin)}"]
            if draw(st.booleans()):
                entries.reverse()
            replacement = frame.splice("{" + ", ".join(e for e in entries if e) + "}")
        elif kind == "rename":
            new = draw(st.sampled_from(KEYS) | st.text(max_size=8))
            if draw(st.booleans()):
                new = frame.splice(draw(st.sampled_from(SURROGATES)))  # a key holding a lone surrogate
            replacement = {(new if k == key else k): v for k, v in obj.items()}
        elif kind == "snake":  # one key in snake_case, or both spellings side by side
            if draw(st.booleans()):
                replacement = {**obj, to_snake(key): draw(st.just(obj[key]) | SCALARS)}
            else:
                replacement = {(to_snake(k) if k == key else k): v for k, v in obj.items()}
        else:  # another message kind (or field), beside the one there
            body = draw(st.just({}) | st.sampled_from(VALID).map(lambda f: next(iter(f.values()))))
            replacement = {**obj, draw(st.sampled_from(KEYS)): body}
        frame.value = set_at(frame.value, where, replacement)


@st.composite
def server_frames(draw: st.DrawFn) -> tuple[bytes | str, int]:
    """A frame to receive (text or bytes), and the deepest nesting spliced into it."""
    if draw(st.integers(0, 19)) == 0:  # plain garbage
        garbage: bytes | str = draw(st.binary(max_size=64) | st.text(max_size=64))
        return garbage, 0
    frame = Frame(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(0, 3))):
        mutate(draw, frame)
    text = frame.render(indent=draw(st.sampled_from([None, None, 2])), ensure_ascii=draw(st.booleans()))
    raw = text.encode("utf-8", "surrogatepass")
    edit = draw(st.sampled_from(["none", "none", "none", "truncate", "bytes"]))
    if edit == "truncate":
        raw = raw[: draw(st.integers(0, max(len(raw) - 1, 0)))]
    elif edit == "bytes":
        for _ in range(draw(st.integers(1, 3))):
            at, cut = draw(st.integers(0, len(raw))), draw(st.integers(0, 2))
            raw = raw[:at] + draw(st.binary(max_size=3)) + raw[at + cut :]
    if edit == "none" and draw(st.booleans()):
        return text, frame.depth  # a str, as websockets hands over a text frame (raw surrogates and all)
    return raw, frame.depth


@st.composite
def sent(draw: st.DrawFn) -> wire.ClientMessage:
    """A message the application sends: any text, or a function response nesting around the limit."""
    if draw(st.booleans()):
        return wire.RealtimeInput(text=draw(SENT_TEXT))
    response: Any = {}
    for _ in range(draw(OPAQUE_DEPTHS) - 1):
        response = {"a": response}
    return wire.ToolResponse(
        function_responses=(wire.FunctionResponse(id="c1", name="f", response=response),)
    )


@st.composite
def steps(draw: st.DrawFn) -> tuple[bytes | str, int] | wire.ClientMessage:
    """A server frame with the deepest nesting spliced into it, or (one time in eight) an application send."""
    if draw(st.integers(0, 7)) == 0:
        return draw(sent())
    return draw(server_frames())


def typed(value: Any) -> Any:
    """A JSON value with every leaf's type spelled out, so that 1 and 1.0 differ."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return (type(value).__name__, value)


def decode_with(library: str, data: bytes | str) -> Any:
    """The decoded message, or REJECTED."""
    with mock.patch.object(codec, "_loads", LIBRARIES[library]):
        try:
            return wire.decode(data)
        except ProtocolError:
            return REJECTED


def nesting(value: Any) -> int:
    """How many levels of objects and arrays a JSON value nests (``[]`` is 1, a scalar 0)."""
    depth, level = 0, [value]
    while containers := [c for c in level if isinstance(c, dict | list)]:
        depth += 1
        level = [v for c in containers for v in (c.values() if isinstance(c, dict) else c)]
    return depth


def deepest_untyped(value: Any) -> int:
    """The deepest nesting of any untyped value in a decoded message: opaque fields, an unknown message's."""
    if isinstance(value, wire.UnknownMessage):
        return max(map(nesting, value.raw.values()), default=0)
    if attrs.has(type(value)):
        return max((deepest_untyped(getattr(value, f.name)) for f in attrs.fields(type(value))), default=0)
    if isinstance(value, tuple):
        return max(map(deepest_untyped, value), default=0)
    return nesting(value) if isinstance(value, dict | list) else 0


def start(prefix: str, sink: IO[bytes], *, secrets: bool) -> tuple[Session, journal.Journal, float]:
    """A session with a journal, brought to the prefix's state through the public API."""
    vertex, script = PREFIXES[prefix]
    cfg = config(vertex=vertex)
    recorder = journal.Journal.create(sink, cfg, include_secrets=secrets)
    session = Session(cfg, recorder=recorder)
    at = 0.0
    session.handle(events.Connect(at=at))
    for step in script:
        at += 0.25
        if isinstance(step, str):
            session.receive(step, at=at, connection=session.connection)
        else:
            session.send(step, at=at)
    return session, recorder, at


@pytest.mark.parametrize("library", LIBRARIES)
@settings(max_examples=EXAMPLES)
@given(
    prefix=st.sampled_from(sorted(PREFIXES)),
    secrets=st.booleans(),
    script=st.lists(st.tuples(steps(), st.floats(0, 3)), min_size=1, max_size=4),
)
def test_receive_rejects_cleanly_or_journals_what_replays(
    library: str,
    prefix: str,
    secrets: bool,
    script: list[tuple[tuple[bytes | str, int] | wire.ClientMessage, float]],
) -> None:
    others = [name for name in LIBRARIES if name != library]
    raw = io.BytesIO()  # binary, as Journal.create writes a file: the journal encodes UTF-8 itself
    with mock.patch.object(codec, "_loads", LIBRARIES[library]):
        session, recorder, at = start(prefix, raw, secrets=secrets)
        for step, dt in script:
            at += dt
            before, written = session.snapshot(), raw.getvalue()
            if not isinstance(step, tuple):
                try:
                    session.send(step, at=at)
                    event("a send accepted")
                except (UsageError, RecordingError) as exc:  # not allowed now; or it would not read back
                    assert not isinstance(exc, RecordingError) or isinstance(
                        exc.__cause__, journal.JournalError
                    )
                    assert session.snapshot() == before
                    assert raw.getvalue() == written
                continue
            data, depth = step
            try:
                session.receive(data, at=at, connection=session.connection)
            except ProtocolError:
                assert session.snapshot() == before
                assert raw.getvalue() == written
                event("a frame rejected")
            else:
                event("a frame accepted")
            message = decode_with(library, data)
            if message is not REJECTED:
                assert deepest_untyped(message) <= codec.MAX_NESTING_DEPTH
            for other in others if depth <= 512 else []:  # deeper, each library's recursion limit decides
                theirs = decode_with(other, data)
                assert (message is REJECTED) == (theirs is REJECTED)
                if message is not REJECTED:
                    assert typed(codec.unstructure(message)) == typed(codec.unstructure(theirs))
        contents = journal.read_journal(io.BytesIO(raw.getvalue()))
    assert not contents.truncated and len(contents.events) == recorder.lines - 1
    live = session.snapshot()
    if not secrets and live.handle is not None:
        live = attrs.evolve(live, handle=journal.fingerprint(live.handle))
    assert Session.replay(contents.config, contents.events).snapshot() == live
