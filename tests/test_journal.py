"""The journal: encoding every event, redaction, corrupt files, replay (snapshots: test_snapshots.py)."""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import typing
from pathlib import Path
from typing import IO, Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from livestate import Backend, Session, SessionConfig, events, journal, wire
from livestate.cli import main
from livestate.errors import ProtocolError, RecordingError, UsageError
from livestate.journal import Journal, JournalError, decode_event, encode_event, read_journal
from livestate.testing import strategies
from livestate.testing.reference import ReferenceDriver

import transcript
from helpers import config

SESSIONS = sorted(p.stem for p in (Path(__file__).parent / "fixtures" / "sessions").glob("*.jsonl"))

times = st.floats(0, 1e6, allow_nan=False)
connections = st.none() | st.integers(1, 1000)
any_event = st.one_of(
    st.builds(events.Connect, at=times),
    st.builds(events.ConnectionOpened, at=times, connection=connections),
    st.builds(events.MessageReceived, at=times, message=strategies.server_messages(), connection=connections),
    st.builds(
        events.SendRequested,
        at=times,
        message=strategies.client_messages().filter(lambda m: not isinstance(m, wire.Setup)),
    ),
    st.builds(
        events.ConnectionClosed,
        at=times,
        code=st.integers(1000, 4999),
        reason=st.text(max_size=30),
        connection=connections,
    ),
    st.builds(events.TimerFired, at=times, timer=st.sampled_from(events.Timer)),
    st.builds(events.CloseRequested, at=times),
    st.builds(events.DiscardRequested, at=times),
    st.builds(events.TransportFailed, at=times, reason=st.text(max_size=30), connection=connections),
)


@given(any_event)
def test_every_event_round_trips_with_secrets(event: events.Event) -> None:
    line = json.dumps(encode_event(event, include_secrets=True))
    assert decode_event(json.loads(line)) == event


@given(any_event)
def test_redacted_events_keep_their_shape_and_sizes(event: events.Event) -> None:
    decoded = decode_event(json.loads(json.dumps(encode_event(event))))
    assert type(decoded) is type(event)
    assert decoded.at == event.at
    original = getattr(event, "message", None)
    if original is not None:
        assert type(decoded.message) is type(original)  # type: ignore[union-attr]
        assert len(wire.encode(decoded.message)) >= 0  # type: ignore[union-attr]
        if isinstance(original, wire.SessionResumptionUpdate) and original.new_handle:
            assert decoded.message.new_handle == journal.fingerprint(original.new_handle)  # type: ignore[union-attr]


def test_redaction_hides_handles_and_payloads_but_keeps_lengths() -> None:
    update = wire.SessionResumptionUpdate(new_handle="very-secret-handle", resumable=True)
    audio = wire.RealtimeInput(audio=wire.Blob(mime_type="audio/pcm", data="QUJD" * 100))
    encoded = json.dumps(
        [
            encode_event(events.MessageReceived(at=1.0, message=update)),
            encode_event(events.SendRequested(at=2.0, message=audio)),
        ]
    )
    assert "very-secret-handle" not in encoded
    assert "QUJD" not in encoded
    assert '"redactedLength": 400' in encoded
    decoded = decode_event(json.loads(encoded)[1])
    assert isinstance(decoded, events.SendRequested) and isinstance(decoded.message, wire.RealtimeInput)
    assert decoded.message.audio is not None and len(decoded.message.audio.data or "") == 400


def record(name: str, path: Path, **kwargs: Any) -> ReferenceDriver:
    """Play a session script with a Journal as the recorder."""
    first = transcript.expected_wire(name)[1][0]
    assert isinstance(first, wire.Setup)
    vertex = "vertex" in name
    cfg = SessionConfig(
        setup=attrs.evolve(first, session_resumption=None),
        backend=Backend.VERTEX if vertex else Backend.GEMINI_API,
        transparent=vertex,
    )
    with Journal.create(path, cfg, **kwargs) as sink:
        session = Session(cfg, recorder=sink)
        if name == "resume_rejected_1007_fresh":
            snapshot = attrs.evolve(
                session.snapshot(), handle="2d9f4e61-8c0a-4b7e-a3d5-6f1b0c8e9a27", established=True
            )
            session = Session.restore(snapshot, recorder=sink)
        return transcript.run(name, session)


@pytest.mark.parametrize("name", [n for n in SESSIONS if n != "resume_rejected_1007_fresh"])
@pytest.mark.parametrize("secrets", [True, False])
def test_a_journal_replays_to_the_same_commands_and_states(name: str, secrets: bool, tmp_path: Path) -> None:
    run = record(name, tmp_path / "j.jsonl", include_secrets=secrets)
    contents = read_journal(tmp_path / "j.jsonl")
    assert contents.redacted is not secrets and not contents.truncated
    assert len(contents.events) == len(run.events)
    replayed = Session(contents.config)
    commands = [c for e in contents.events for c in replayed.handle(e)]
    if secrets:
        assert commands == [c for _, c in run.timeline]
        assert replayed.snapshot() == run.session.snapshot()
    states = [c.new for c in commands if type(c).__name__ == "StateChanged"]
    assert states == [c.new for _, c in run.timeline if type(c).__name__ == "StateChanged"]


HANDLES = ["vtx-H1-8f2c", "vtx-H2-1a9e", "vtx-H3-77d0", "c41f8a92-0d7e-4b35-9e26-7a8b1c5d3f42"]


def test_no_handle_in_a_redacted_journal_its_timeline_or_the_logs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("vertex_transparent_drop_replay", "gemini_goaway_resume"):
        path = tmp_path / f"{name}.jsonl"
        record(name, path)
        assert main(["replay", str(path)]) == 0
        assert main(["replay", str(path), "--format", "json"]) == 0
        text = path.read_text() + capsys.readouterr().out + caplog.text
        assert "Resume(#2" in text or "sessionResumptionUpdate" in text
        for handle in HANDLES:
            assert handle not in text


def test_the_replay_timeline_and_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "j.jsonl"
    record("vertex_transparent_drop_replay", path)
    assert main(["replay", str(path), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    summary = out["summary"]
    # The script: 10 new audio messages, 2 connections, one resume replaying a4..a7, all consumed by the end.
    assert summary["sent"] == 10
    assert summary["connections"] == 2
    assert summary["resumes"] == 1 and summary["replayed"] == 4
    assert summary["consumed"] == 10 and summary["dropped"] == 0
    assert summary["final_state"] == "RESUMABLE"
    assert out["timeline"][0]["event"] == "Connect"
    assert main(["replay", str(path)]) == 0
    text = capsys.readouterr().out
    assert "messages: sent 10, consumed 10, replayed 4, handed back: dropped 0, unconfirmed 0" in text


def write_lines(path: Path, lines: list[str], *, final_newline: bool = True) -> None:
    path.write_text("\n".join(lines) + ("\n" if final_newline else ""))


def good_lines(tmp_path: Path) -> list[str]:
    record("vertex_transparent_drop_replay", tmp_path / "good.jsonl")
    return (tmp_path / "good.jsonl").read_text().splitlines()


def test_a_cut_off_last_line_is_reported_and_everything_before_recovered(tmp_path: Path) -> None:
    lines = good_lines(tmp_path)
    write_lines(tmp_path / "cut.jsonl", [*lines[:-1], lines[-1][: len(lines[-1]) // 2]], final_newline=False)
    contents = read_journal(tmp_path / "cut.jsonl")
    assert contents.truncated
    assert len(contents.events) == len(lines) - 2


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda lines: [*lines[:3], "{not json", *lines[3:]], r"line 4: not valid JSON"),
        (
            lambda lines: [*lines[:2], '{"event":"Teleported","at":1}', *lines[2:]],
            r"line 3: event: unknown event kind 'Teleported'",
        ),
        (
            lambda lines: [lines[0].replace('"version":1', '"version":99'), *lines[1:]],
            r"line 1: version: journal format 99",
        ),
        (
            lambda lines: [*lines[:2], '{"event":"Connect","at":"soon"}', *lines[2:]],
            r"line 3: Connect: at: expected a number",
        ),
        (
            lambda lines: [*lines[:2], '{"event":"ConnectionClosed","at":1,"code":"x"}', *lines[2:]],
            r"line 3: ConnectionClosed: code",
        ),
        (lambda lines: ['{"hello":1}', *lines[1:]], r"line 1: not a livestate journal header"),
    ],
)
def test_corrupt_journals_give_clear_errors(tmp_path: Path, mutate: Any, message: str) -> None:
    write_lines(tmp_path / "bad.jsonl", mutate(good_lines(tmp_path)))
    with pytest.raises(JournalError, match=message):
        read_journal(tmp_path / "bad.jsonl")


def test_replay_command_reports_a_corrupt_journal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_lines(tmp_path / "bad.jsonl", [*good_lines(tmp_path)[:2], "[1, 2"])
    (tmp_path / "bad.jsonl").write_text((tmp_path / "bad.jsonl").read_text() + "{}\n")
    assert main(["replay", str(tmp_path / "bad.jsonl")]) == 2
    assert "line 3" in capsys.readouterr().err


# --- what the journal must never lose ------------------------------------------------------------


def live_session(sink: Journal, **overrides: Any) -> Session:
    session = Session(config(**overrides), recorder=sink)
    session.handle(events.Connect(at=0.0))
    session.receive('{"setupComplete": {}}', at=0.5, connection=session.connection)
    return session


def nested_list(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("secrets", [True, False])
def test_every_depth_the_decoder_accepts_is_journaled_and_replays(secrets: bool) -> None:
    deepest = nested_list(wire.codec.MAX_NESTING_DEPTH - 1)  # in {"x": ...}, the 64th level
    frames = [  # "data" and "handle" keys: the redaction walks them
        f'{{"serverContent": {{"turnComplete": true, "groundingMetadata": {{"x": {deepest}}}}}}}',
        f'{{"toolCall": {{"functionCalls": [{{"id": "c1", "name": "f", "args": {{"data": {deepest}}}}}]}}}}',
        f'{{"liveFutureSignal": {{"handle": {deepest}}}}}',
    ]
    too_deep = f'{{"serverContent": {{"groundingMetadata": {{"x": {nested_list(500)}}}}}}}'  # ~1 KB
    stream = io.StringIO()
    with Journal.create(stream, config(), include_secrets=secrets) as sink:
        session = live_session(sink)
        for frame in frames:
            session.receive(frame, at=1.0, connection=session.connection)
        written = stream.getvalue()
        with pytest.raises(ProtocolError, match="groundingMetadata: nested more than 64 levels"):
            session.receive(too_deep, at=2.0, connection=session.connection)
        assert stream.getvalue() == written
        contents = read_journal(io.StringIO(written))
    received = [e.message for e in contents.events if isinstance(e, events.MessageReceived)]
    assert received[1:] == [wire.decode(frame) for frame in frames]
    assert Session.replay(contents.config, contents.events).snapshot() == session.snapshot()


def events_of(text: str) -> list[events.Event]:
    return [decode_event(json.loads(line)) for line in text.splitlines()[1:]]


def test_an_unknown_server_setup_key_replays_as_an_unknown_message() -> None:
    stream = io.StringIO()
    session = live_session(Journal(stream, include_secrets=True))
    session.receive('{"setup": {"model": "m"}}', at=1.0, connection=session.connection)
    last = events_of("header\n" + stream.getvalue())[-1]
    assert last == events.MessageReceived(
        at=1.0, message=wire.UnknownMessage(keys=("setup",), raw={"setup": {"model": "m"}}), connection=1
    )
    with pytest.raises(JournalError, match=r"SendRequested: message: frame: expected one of setup"):
        decode_event({"event": "SendRequested", "at": 1, "message": {"setupComplete": {}}})


def test_a_lone_surrogate_is_escaped_and_reads_back(tmp_path: Path) -> None:
    # Neither the decoder nor Session.send lets one through; an event built by hand still records.
    path = tmp_path / "j.jsonl"
    message = wire.RealtimeInput(text="caf\u00e9 \ud800 \U0001f600")
    with Journal.create(path, config(), include_secrets=True) as sink:
        sink(events.SendRequested(at=1.0, message=wire.RealtimeInput(text="caf\u00e9")))
        sink(events.SendRequested(at=2.0, message=message))
    lines = path.read_text(encoding="utf-8").splitlines()  # valid UTF-8 throughout
    assert "caf\u00e9" in lines[-2]  # written as UTF-8, readable
    assert lines[-1].isascii() and "\\ud800" in lines[-1]  # escaped only where it must be
    assert read_journal(path).events[-1] == events.SendRequested(at=2.0, message=message)


class FillingDisk(io.RawIOBase):
    """An unbuffered file on a disk with ``room`` bytes left: a write stores what fits, then ENOSPC."""

    def __init__(self, room: int, *, seekable: bool = True) -> None:
        self.data = bytearray()
        self.room = room
        self._seekable = seekable

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._seekable

    def tell(self) -> int:
        return len(self.data)

    def seek(self, offset: int, whence: int = 0) -> int:
        assert (offset, whence) == (len(self.data), 0)  # the journal only ever seeks to the end
        return offset

    def truncate(self, size: int | None = None) -> int:
        assert size is not None
        self.room += len(self.data) - size
        del self.data[size:]
        return size

    def write(self, b: Any) -> int:
        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        chunk = bytes(b)[: self.room]
        self.data += chunk
        self.room -= len(chunk)
        return len(chunk)


#: How the journal meets the disk: its own way (an unbuffered binary file, which it can cut back), a
#: binary stream it cannot seek (a pipe), and a text stream over a buffer (whose rest it cannot take back).
SINKS = ["binary", "pipe", "text"]


def sink_for(kind: str, disk: FillingDisk) -> IO[Any]:
    if kind == "text":
        return io.TextIOWrapper(io.BufferedWriter(disk), encoding="utf-8")
    disk._seekable = kind == "binary"
    return disk


def header_bytes() -> int:
    stream = io.StringIO()
    Journal.create(stream, config(), include_secrets=True)
    return len(stream.getvalue().encode())


#: Lines to write until the disk is full, multi-byte characters included (a cut may split one).
FILLER = [
    events.SendRequested(at=1.0 + n, message=wire.RealtimeInput(text=text))
    for n, text in enumerate(
        ["h\u00e9llo \u20ac\U0001f600 " * 3, "plain ascii text that is long enough"] * 10
    )
]


@pytest.mark.parametrize("kind", SINKS)
@pytest.mark.parametrize("room", range(-21, 480, 7))  # bytes left after the header: every cut position
def test_a_full_disk_raises_and_the_journal_holds_exactly_what_was_recorded(kind: str, room: int) -> None:
    disk = FillingDisk(header_bytes() + room)
    try:
        sink = Journal.create(sink_for(kind, disk), config(), include_secrets=True)
    except JournalError as exc:
        assert room < 0 and "writing line 1 (the header) failed" in str(exc)
        assert isinstance(exc.__cause__, OSError) and exc.__cause__.errno == errno.ENOSPC
        return
    recorded: list[events.Event] = []
    for event in FILLER:
        try:
            sink(event)
        except JournalError as exc:
            error = exc
            break
        recorded.append(event)
    assert isinstance(error.__cause__, OSError) and error.__cause__.errno == errno.ENOSPC
    assert f"writing line {len(recorded) + 2} (SendRequested) failed: [Errno 28] No space left" in str(error)
    contents = read_journal(io.BytesIO(bytes(disk.data)))
    assert list(contents.events) == recorded  # everything before the failed line, and not that one
    assert contents.truncated == (not disk.data.endswith(b"\n"))
    disk.room = 10**6  # room again
    if kind == "binary":  # the cut-off part was taken back: nothing lost, and the journal goes on
        assert "nothing of it was kept, and the journal goes on" in str(error)
        assert not contents.truncated
        sink(events.CloseRequested(at=99.0))
        recorded.append(events.CloseRequested(at=99.0))
    else:  # the cut-off line stays last: the journal refuses more
        assert "may be cut off (read_journal skips it), and the journal takes no more events" in str(error)
        with pytest.raises(JournalError, match=r"failed earlier .* record on in a new journal") as info:
            sink(events.CloseRequested(at=99.0))
        assert isinstance(info.value.__cause__, OSError)
    sink.close()  # a text stream may flush the rest of the cut-off line now; nothing is raised
    contents = read_journal(io.BytesIO(bytes(disk.data)))
    assert list(contents.events)[: len(recorded)] == recorded
    assert len(contents.events) <= len(recorded) + (kind == "text")


def test_closing_a_failed_journal_raises_nothing() -> None:
    disk = FillingDisk(header_bytes() + 50)
    sink = Journal.create(sink_for("text", disk), config(), include_secrets=True)
    with pytest.raises(JournalError):
        for event in FILLER:
            sink(event)
    sink.close()  # the text stream flushes the rest of the line again, onto a disk still full
    assert read_journal(io.BytesIO(bytes(disk.data))).truncated


def test_the_session_undoes_an_event_its_journal_could_not_write() -> None:
    disk = FillingDisk(header_bytes() + 10)
    session = Session(config(), recorder=Journal.create(disk, config(), include_secrets=True))
    before = session.snapshot()
    with pytest.raises(RecordingError) as info:
        session.handle(events.Connect(at=0.0))
    assert isinstance(info.value.__cause__, JournalError)
    assert isinstance(info.value.__cause__.__cause__, OSError)
    assert session.snapshot() == before
    assert disk.data.endswith(b"\n") and read_journal(io.BytesIO(bytes(disk.data))).events == ()
    disk.room = 10**6
    session.handle(events.Connect(at=1.0))
    assert read_journal(io.BytesIO(bytes(disk.data))).events == (events.Connect(at=1.0),)


def test_a_last_line_without_its_newline_is_skipped_even_when_whole(tmp_path: Path) -> None:
    lines = good_lines(tmp_path)
    write_lines(tmp_path / "cut.jsonl", lines, final_newline=False)  # a failed write stopped just short
    contents = read_journal(tmp_path / "cut.jsonl")
    assert contents.truncated and len(contents.events) == len(lines) - 2


def test_a_real_full_disk(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    with pytest.raises(
        JournalError, match=r"journal /dev/full: writing line 1 \(the header\) failed"
    ) as info:
        Journal.create("/dev/full", config())
    assert isinstance(info.value.__cause__, OSError) and info.value.__cause__.errno == errno.ENOSPC


def test_a_closed_stream_raises_journal_error() -> None:
    stream = io.StringIO()
    sink = Journal(stream, name="memory")
    stream.close()
    with pytest.raises(JournalError, match="journal memory: writing line 1 \\(Connect\\) failed"):
        sink(events.Connect(at=0.0))


def test_an_event_that_cannot_be_encoded_is_refused_and_nothing_written() -> None:
    stream = io.StringIO()
    sink = Journal(stream)
    deep: Any = {}
    for _ in range(5000):
        deep = {"x": deep}
    for response in ({"ok": {1, 2}}, deep):
        message = wire.ToolResponse(
            function_responses=(wire.FunctionResponse(id="c", name="f", response=response),)
        )
        with pytest.raises(JournalError, match=r"journal StringIO: cannot encode SendRequested"):
            sink(events.SendRequested(at=1.0, message=message))
    assert stream.getvalue() == ""
    sink(events.Connect(at=2.0))  # not a write failure: the journal goes on
    assert events_of("header\n" + stream.getvalue()) == [events.Connect(at=2.0)]


def test_a_message_that_would_not_read_back_is_refused_and_the_send_undone() -> None:
    deep: Any = {}
    for _ in range(wire.codec.MAX_NESTING_DEPTH):  # {} counts too: one level past the limit
        deep = {"x": deep}
    message = wire.ToolResponse(function_responses=(wire.FunctionResponse(id="c1", name="f", response=deep),))
    raw = io.BytesIO()
    session = live_session(Journal.create(raw, config()))
    session.receive('{"toolCall": {"functionCalls": [{"id": "c1", "name": "f"}]}}', at=1.0, connection=1)
    before, written = session.snapshot(), raw.getvalue()
    # The session refuses it at the door; the journal, given the event directly, refuses it too.
    with pytest.raises(UsageError, match="would not read back"):
        session.send(message, at=2.0)
    assert session.snapshot() == before and raw.getvalue() == written
    assert session.recorder is not None
    with pytest.raises(JournalError) as info:
        session.recorder(events.SendRequested(at=2.0, message=message))
    assert (
        "cannot encode SendRequested: toolResponse.functionResponses[0].response: nested more than 64"
        in str(info.value)
    )
    assert raw.getvalue() == written
    session.send(
        attrs.evolve(
            message, function_responses=(wire.FunctionResponse(id="c1", name="f", response=deep["x"]),)
        ),
        at=3.0,
    )
    assert read_journal(io.BytesIO(raw.getvalue())).events[-1].at == 3.0


def test_a_line_cut_inside_a_utf8_character_is_reported_as_truncated(tmp_path: Path) -> None:
    lines = good_lines(tmp_path)
    last = '{"event":"SendRequested","at":9,"message":{"realtimeInput":{"text":"\u20ac"}}}'.encode()
    cut = last[: last.index("\u20ac".encode()) + 1]  # one byte of three
    (tmp_path / "cut.jsonl").write_bytes("\n".join(lines).encode() + b"\n" + cut)
    contents = read_journal(tmp_path / "cut.jsonl")
    assert contents.truncated and len(contents.events) == len(lines) - 1
    (tmp_path / "bad.jsonl").write_bytes("\n".join(lines).encode() + b"\n" + cut + b"\n")
    with pytest.raises(JournalError, match=rf"line {len(lines) + 1}: not valid JSON \(not UTF-8\)"):
        read_journal(tmp_path / "bad.jsonl")


def test_the_journal_knows_every_kind_of_event() -> None:
    samples = {
        events.Connect: events.Connect(at=0.0),
        events.ConnectionOpened: events.ConnectionOpened(at=0.1, connection=1),
        events.MessageReceived: events.MessageReceived(at=0.2, message=wire.SetupComplete(), connection=1),
        events.SendRequested: events.SendRequested(at=0.3, message=wire.RealtimeInput(text="x")),
        events.ConnectionClosed: events.ConnectionClosed(at=0.4, code=1006, reason="", connection=1),
        events.TimerFired: events.TimerFired(at=0.5, timer=events.Timer.RESEED),
        events.CloseRequested: events.CloseRequested(at=0.6),
        events.DiscardRequested: events.DiscardRequested(at=0.7),
        events.TransportFailed: events.TransportFailed(at=0.8, reason="bad URL", connection=2),
    }
    assert set(samples) == set(typing.get_args(events.Event))  # a new event must be journaled too
    for event in samples.values():
        assert decode_event(json.loads(json.dumps(encode_event(event)))) == event


def test_the_journal_reads_its_scalars_with_the_codecs_strict_hooks() -> None:
    from livestate._records import CONVERTER
    from livestate.wire import hooks

    for type_, hook in [
        (str, hooks.structure_str),
        (bool, hooks.structure_bool),
        (float, hooks.structure_float),
        (int, hooks.structure_integer),
    ]:
        assert CONVERTER.get_structure_hook(type_) is hook
    cases = [
        (
            {"event": "ConnectionClosed", "at": 1, "code": True},
            "ConnectionClosed: code: expected an integer, got true",
        ),
        (
            {"event": "ConnectionClosed", "at": 1, "code": 1.5},
            "ConnectionClosed: code: expected an integer, got 1.5",
        ),
        (
            {"event": "ConnectionOpened", "at": 1, "connection": "2"},
            "ConnectionOpened: connection: expected an integer, got '2'",
        ),
        (
            {"event": "TransportFailed", "at": 1, "reason": 7},
            "TransportFailed: reason: expected a string, got 7",
        ),
        ({"event": "Connect", "at": None}, "Connect: at: expected a number, got null"),
        ({"event": "Connect", "at": False}, "Connect: at: expected a number, got false"),
        (
            {"event": "MessageReceived", "at": 1, "message": [1]},
            "MessageReceived: message: expected a message object, got list",
        ),
    ]
    for line, message in cases:
        with pytest.raises(JournalError, match=f"^line 3: {message}$"):
            decode_event(line, line=3)


def test_an_integer_of_any_size_reads_back(tmp_path: Path) -> None:
    cfg = config(seed=2**62 + 1)  # wider than the wire's int32, which the journal's ints are not bound to
    with Journal.create(tmp_path / "big.jsonl", cfg) as sink:
        sink(events.ConnectionClosed(at=1.0, code=2**40, connection=2**33))
    contents = read_journal(tmp_path / "big.jsonl")
    assert contents.config == cfg
    assert contents.events == (events.ConnectionClosed(at=1.0, code=2**40, connection=2**33),)


def test_a_time_that_is_not_finite_is_refused_and_the_event_undone() -> None:
    sink = io.BytesIO()
    session = Session(config(), recorder=Journal.create(sink, config()))
    with pytest.raises(RecordingError) as info:
        session.handle(events.Connect(at=float("inf")))
    assert isinstance(info.value.__cause__, JournalError)
    assert "cannot encode Connect" in str(info.value.__cause__)
    assert session.state.name == "IDLE"
    assert read_journal(io.BytesIO(sink.getvalue())).events == ()
