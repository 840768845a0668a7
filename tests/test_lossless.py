"""Lossless and loud, on the pure core with the default configuration.

Budgets count only attempts that made no progress; a rejected resume replays the unconsumed input into the
fresh session (after the application's re-seed, when asked for); every message ends confirmed or handed back
as itself; bad input fails at the door; a refused setup fails at once with the server's words.
"""

from __future__ import annotations

import io
import math
from typing import Any

import pytest

from livestate import Session, SessionConfig, SessionState, commands, events, journal, wire
from livestate.errors import BufferFull, LiveStateError, ProtocolError, RecordingError, UsageError
from livestate.events import Timer
from livestate.testing.server import Fault, FaultPlan

from helpers import SETUP, TURN, TURN_COMPLETE, audio, config, driver, go_away, tool_call, update

S = SessionState


def handed_back(log: list[commands.Command]) -> list[int]:
    return [
        seq
        for c in log
        if isinstance(c, commands.MessagesDropped | commands.MessagesUnconfirmed)
        for seq in c.seqs
    ]


# --- 1. progress-based budgets ----------------------------------------------------------------------


@pytest.mark.parametrize("vertex", [True, False])
def test_thirty_quick_drops_with_every_resume_accepted_never_fail_the_session(vertex: bool) -> None:
    d = driver(vertex=vertex).live()  # the default config: 5 attempts per outage, healthy after 10 s
    for handle in range(1, 31):
        d.advance(0.1)
        d.send(audio(f"a{handle}"))
        d.server(update(f"h{handle}", index=1 if vertex else None))  # progress: a fresh handle
        d.advance(0.3)  # far less than healthy_after
        d.close(1006)
        d.advance(0.01)
        assert d.session.state is S.RECONNECTING
        d.server(wire.SetupComplete())
    assert d.session.state is S.SETUP_COMPLETE
    assert d.session.outage_attempts == 1 and d.session.session_attempts == 1
    assert len(d.of(commands.ReconnectWithHandle)) == 30
    assert d.of(commands.SessionFailed) == []


@pytest.mark.parametrize(
    "progress",
    [
        pytest.param(lambda d: d.server(TURN_COMPLETE), id="server content"),
        pytest.param(lambda d: d.server(update("h-new")), id="a resumable handle"),
        pytest.param(lambda d: d.server(tool_call("c")), id="a tool call"),
    ],
)
def test_each_kind_of_progress_ends_the_outage(progress: Any) -> None:
    d = driver().live()
    d.server(update("h0"))
    for _ in range(12):  # more than max_attempts_per_outage drops, each after progress
        d.close(1006)
        d.server(wire.SetupComplete())
        progress(d)
        d.server(wire.ToolCallCancellation(ids=("c",)))
    assert d.session.state not in (S.FAILED, S.CLOSED)
    assert d.session.outage_attempts == 0


def test_an_index_advance_is_progress_even_without_a_handle() -> None:
    d = driver(vertex=True).live()
    d.server(update("h0", index=0))
    for i in range(12):
        d.send(audio(f"a{i}"))
        d.server(update(resumable=False, index=1))  # consumed input, no handle
        assert d.session.outage_attempts == 0
        d.close(1006)
        d.server(wire.SetupComplete())
    assert d.session.state is S.SETUP_COMPLETE


def test_attempts_that_never_reach_setup_complete_fail_the_session_with_the_reason() -> None:
    d = driver().live()
    d.server(update("h1"))
    d.close(1006)
    for _ in range(10):
        if d.session.state is S.FAILED:
            break
        d.close(1006)  # the attempt fails before setupComplete
        d.advance(60.0)  # through any backoff
    (failed,) = d.of(commands.SessionFailed)
    assert failed.reason == "close 1006 '': 5 attempts without progress in this outage, the budget is spent"
    assert d.session.state is S.FAILED


def test_connections_that_complete_setup_but_never_make_progress_spend_the_budget() -> None:
    d = driver().live()
    d.server(update("h1"))
    for _ in range(10):
        if d.session.state is S.FAILED:
            break
        d.close(1011, "Internal error encountered.")
        d.advance(60.0)
        if d.session.snapshot().attempt_open:
            d.server(wire.SetupComplete())  # accepted, then dropped before any handle or content
    assert d.session.state is S.FAILED
    assert len(d.of(commands.ReconnectWithHandle)) == 5


def test_go_away_reconnects_never_spend_the_budget() -> None:
    d = driver(max_attempts_per_session=3).live()
    for i in range(20):  # many more planned reconnects than the whole session's budget
        d.server(update(f"h{i}"))
        d.server(go_away(30.0))  # at a safe point: reconnect now
        assert d.session.state is S.RECONNECTING
        d.server(wire.SetupComplete())
    assert d.session.state is S.SETUP_COMPLETE
    assert d.session.session_attempts == 1  # only the connection still on trial counts
    assert len(d.of(commands.ReconnectWithHandle)) == 20


def test_healthy_after_still_resets_the_outage_as_a_secondary_rule() -> None:
    d = driver().live()
    d.server(update("h1"))
    d.close(1006)
    d.server(wire.SetupComplete())  # no progress on this one ...
    assert d.session.outage_attempts == 1
    d.advance(10.0)  # ... but it stayed up for healthy_after
    assert d.session.outage_attempts == 0


# --- 2. a rejected resume loses nothing -------------------------------------------------------------


def reject_the_resume(d: Any) -> None:
    d.close(1006)
    assert d.of(commands.ReconnectWithHandle)
    d.close(1007, "Request contains an invalid argument.")
    d.advance(60.0)
    assert (
        isinstance(d.log[-1], commands.StartTimer | commands.OpenConnection)
        or d.session.snapshot().attempt_open
    )


@pytest.mark.parametrize("vertex", [True, False])
def test_a_rejected_resume_replays_the_unconsumed_input_into_the_fresh_session(vertex: bool) -> None:
    d = driver(vertex=vertex).live()
    d.server(update("h1", index=0 if vertex else None))
    for i in range(5):
        d.send(audio(f"a{i}"))
    reject_the_resume(d)
    mark = len(d.wire_log)
    d.server(wire.SetupComplete())
    assert d.of(commands.Resumed)[-1] == commands.Resumed(state_restored=False, replayed=5)
    assert [m.text for _, m in d.wire_log[mark:]] == [f"a{i}" for i in range(5)]
    assert handed_back(d.log) == []


def reseed_driver(vertex: bool = True, **overrides: Any) -> Any:
    d = driver(vertex=vertex, reseed_history=True, **overrides).live()
    d.server(update("h1", index=0 if vertex else None))
    for i in range(3):
        d.send(audio(f"a{i}"))
    reject_the_resume(d)
    fresh = d.of(commands.OpenConnection)[-1]
    assert fresh.setup.history_config == wire.HistoryConfig(initial_history_in_client_content=True)
    d.server(wire.SetupComplete())
    return d


def history(text: str, *, complete: bool) -> wire.ClientContent:
    turn = wire.Content(role="user", parts=(wire.Part(text=text),))
    return wire.ClientContent(turns=(turn,), turn_complete=complete)


def test_with_reseed_history_the_input_waits_for_the_reseed_then_goes_after_it() -> None:
    d = reseed_driver()
    assert d.of(commands.Resumed)[-1] == commands.Resumed(state_restored=False, replayed=0, held=3)
    mark = len(d.wire_log)
    d.send(audio("said meanwhile"))  # held too: it comes after the old input
    assert d.wire_log[mark:] == []
    d.send(history("earlier turns", complete=False))
    d.send(history("the last turn", complete=True))  # the re-seed is done: the held input follows it
    sent = [
        m.text if isinstance(m, wire.RealtimeInput) else m.turns[0].parts[0].text
        for _, m in d.wire_log[mark:]
    ]
    assert sent == ["earlier turns", "the last turn", "a0", "a1", "a2", "said meanwhile"]
    # The server consumed the re-seed and two of the held messages: exactly those are confirmed.
    d.server(update("h2", index=4))
    # Wire order was seqs 5, 6, 1, 2, 3, 4: the first four are confirmed, which is not a prefix of the seqs.
    assert d.log[-1] == commands.TrimSeqs(seqs=(5, 6, 1, 2))
    assert d.buffer.seqs() == [3, 4]
    d.server(update("h3", index=6))
    assert d.log[-1] == commands.TrimThrough(seq=4) and d.buffer.seqs() == []
    assert handed_back(d.log) == []


def test_a_reseed_that_never_comes_releases_the_input_after_the_timeout() -> None:
    d = reseed_driver(reseed_timeout=4.0)
    mark = len(d.wire_log)
    d.advance(3.9)
    assert d.wire_log[mark:] == []
    d.advance(0.2)
    assert [m.text for _, m in d.wire_log[mark:]] == ["a0", "a1", "a2"]
    assert handed_back(d.log) == []


def test_the_application_can_discard_the_held_input_and_gets_it_back() -> None:
    d = reseed_driver()
    out = d.feed(events.DiscardRequested(at=d.now))
    (dropped,) = [c for c in out if isinstance(c, commands.MessagesDropped)]
    assert dropped.seqs == (1, 2, 3)
    assert not [c for c in out if isinstance(c, commands.MessagesUnconfirmed)]
    assert d.buffer.seqs() == []
    assert Timer.RESEED not in d.session.deadlines()


def test_the_old_opt_out_hands_the_unconsumed_input_back_with_the_messages() -> None:
    d = driver(vertex=True, replay_after_fresh_session=False).live()
    d.server(update("h1", index=0))
    d.send(audio("a"))
    d.send(audio("b"))
    reject_the_resume(d)
    d.server(wire.SetupComplete())
    (dropped,) = d.of(commands.MessagesDropped)
    assert dropped.seqs == (1, 2) and dropped.count == 2


# --- 3. hand back, never just count ---------------------------------------------------------------


def test_close_hands_back_sent_messages_as_unconfirmed_and_unsent_ones_as_dropped() -> None:
    d = driver().live()
    d.server(update("h1"))
    d.send(audio("sent"))
    d.close(1006)
    d.close(1006)  # the resume fails: now backing off, nothing open
    d.send(audio("never sent"))
    out = d.feed(events.CloseRequested(at=d.now))
    unconfirmed = [c for c in out if isinstance(c, commands.MessagesUnconfirmed)]
    dropped = [c for c in out if isinstance(c, commands.MessagesDropped)]
    assert [c.seqs for c in unconfirmed] == [(1,)] and [c.seqs for c in dropped] == [(2,)]


def test_a_failed_session_names_every_unconfirmed_message() -> None:
    d = driver(max_attempts_per_outage=1).live()
    d.send(audio("a"))
    d.send(audio("b"))
    d.close(1011, "Internal error encountered.")
    d.close(1011, "Internal error encountered.")
    (failed,) = d.of(commands.SessionFailed)
    assert failed.seqs == (1, 2)
    assert sorted(handed_back(d.log)) == [1, 2]


def test_a_late_answer_to_an_orphaned_call_is_handed_back_not_sent() -> None:
    d = driver().live()
    d.server(update("h1"))
    d.server(tool_call("after"))
    d.close(1006)
    d.server(wire.SetupComplete())
    mark = len(d.wire_log)
    d.send(wire.ToolResponse(function_responses=(wire.FunctionResponse(id="after", name="f", response={}),)))
    assert d.wire_log[mark:] == []
    (dropped,) = d.of(commands.MessagesDropped)
    assert dropped.seqs == (1,) and "never issued" in dropped.reason


def test_frames_of_a_superseded_connection_are_not_counted_as_client_messages() -> None:
    d = driver().live()
    d.server(update("h1"))
    d.close(1006)
    assert d.server(TURN, connection=1) == ()
    assert d.of(commands.MessagesDropped) == []


def test_the_buffer_hands_back_what_it_drops() -> None:
    d = driver().live()
    d.send(audio("a"))
    d.send(audio("b"))
    pairs = d.buffer.apply(commands.DropBuffered(seqs=(2, 1, 9)))
    assert pairs == [(2, audio("b")), (1, audio("a"))]


# --- 4. validate at the door ------------------------------------------------------------------------


def test_a_message_that_cannot_be_encoded_fails_at_send_and_changes_nothing() -> None:
    d = driver().live()
    before = d.session.snapshot()
    bad = wire.RealtimeInput(audio=wire.Blob(mime_type="audio/pcm", data=b"\0\0"))  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=r"realtimeInput\.audio\.data must be base64 text, got bytes"):
        d.send(bad)
    assert d.session.snapshot() == before
    d.send(audio("next"))
    assert d.wire_log[-1][1] == audio("next")


def test_a_full_buffer_raises_buffer_full_and_changes_nothing() -> None:
    d = driver(max_buffer_messages=2).live()
    d.send(audio("a"))
    d.send(audio("b"))
    before = d.session.snapshot()
    assert not d.session.has_room_for(audio("c"))
    with pytest.raises(BufferFull, match="replay buffer is full"):
        d.send(audio("c"))
    assert d.session.snapshot() == before
    d.server(update("h1"))  # handle-only: covers what was sent before the guard window
    d.advance(3.0)
    d.server(update("h2"))
    assert d.session.has_room_for(audio("c"))


def test_a_message_bigger_than_the_whole_buffer_is_a_usage_error() -> None:
    d = driver(max_buffer_bytes=100).live()
    with pytest.raises(UsageError, match="can never fit"):
        d.send(audio("x" * 200))


BAD_CONFIGS = [
    ({"setup_timeout": 0}, "setup_timeout must be greater than 0"),
    ({"setup_timeout": math.inf}, "setup_timeout must be a finite number"),
    ({"goaway_margin": -1.0}, "goaway_margin must be at least 0"),
    ({"guard_window": "2"}, "guard_window must be a finite number"),
    ({"healthy_after": True}, "healthy_after must be a finite number"),
    ({"backoff_factor": 0.5}, "backoff_factor must be at least 1"),
    ({"backoff_jitter": 1.5}, "backoff_jitter must be in"),
    ({"backoff_initial": 5.0, "backoff_max": 1.0}, "backoff_max .* must be at least backoff_initial"),
    ({"max_attempts_per_outage": 0}, "max_attempts_per_outage must be at least 1"),
    ({"max_attempts_per_session": 2.5}, "max_attempts_per_session must be an int"),
    ({"max_buffer_messages": 0}, "max_buffer_messages must be at least 1"),
    ({"max_buffer_bytes": -1}, "max_buffer_bytes must be at least 1"),
    ({"max_pending_calls": 0}, "max_pending_calls must be at least 1"),
    ({"max_frame_bytes": 0}, "max_frame_bytes must be at least 1"),
    ({"first_client_index": -1}, "first_client_index must be at least 0"),
    ({"transparent": 1}, "transparent must be a bool"),
    ({"replay_after_fresh_session": None}, "replay_after_fresh_session must be a bool"),
    ({"backend": "vertex"}, "backend must be a Backend"),
    ({"close_rules": [1]}, "close_rules must be a tuple of CloseRule"),
    ({"transparent": True}, "transparent resumption is supported on Backend.VERTEX only"),
    ({"setup": "models/x"}, "setup must be a Setup"),
    ({"setup": wire.Setup(model="")}, "setup.model must be a non-empty model name"),
    (
        {"setup": wire.Setup(model="m", extra={"sessionResumption": {"handle": "x"}})},
        "must not set sessionResumption",
    ),
    (
        {"setup": wire.Setup(model="m", session_resumption=wire.SessionResumptionConfig(handle="x"))},
        "must not set sessionResumption",
    ),
]


@pytest.mark.parametrize(("overrides", "problem"), BAD_CONFIGS)
def test_every_config_field_is_checked_when_the_config_is_made(
    overrides: dict[str, Any], problem: str
) -> None:
    options: dict[str, Any] = {"setup": SETUP, **overrides}
    with pytest.raises(UsageError, match=problem):
        SessionConfig(**options)


def test_the_defaults_are_valid_and_lossless() -> None:
    c = SessionConfig(setup=SETUP)
    assert c.replay_after_fresh_session and not c.drop_oldest_when_full


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda: Fault(kind="explode"), "Fault.kind must be one of"),
        (lambda: Fault(kind="drop", after_messages=-1), "after_messages must be a number >= 0"),
        (lambda: FaultPlan(drop_rate=2.0), "drop_rate is a probability"),
        (lambda: FaultPlan(faults=[Fault(kind="drop")]), "faults must be a tuple of Fault"),  # type: ignore[arg-type]
        (
            lambda: FaultPlan(max_connection_age=0.5, go_away_time_left=1.0),
            "max_connection_age must be at least",
        ),
    ],
)
def test_faults_and_plans_are_checked(make: Any, problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        make()


# --- 5. fail fast, with the server's words ----------------------------------------------------------

REFUSAL = wire.ServerError(
    code=403, status="PERMISSION_DENIED", message="The caller does not have permission"
)


def test_an_error_frame_in_answer_to_a_fresh_setup_fails_at_once_with_the_servers_words() -> None:
    d = driver()
    d.connect()
    d.server(REFUSAL)
    (failed,) = d.of(commands.SessionFailed)
    assert failed.reason == (
        "setup refused: 403 PERMISSION_DENIED The caller does not have permission: the server rejected the session"
    )
    assert d.session.state is S.FAILED
    assert commands.CloseConnection(code=1000, reason="livestate: the server refused the setup") in d.log


def test_an_error_frame_in_answer_to_a_resume_starts_a_fresh_session() -> None:
    d = driver().live()
    d.server(update("h1"))
    d.send(audio("a"))
    d.close(1006)
    d.server(REFUSAL)  # the resume's setup was refused: the handle is no good
    d.advance(60.0)
    assert isinstance(d.of(commands.OpenConnection)[-1], commands.OpenConnection)
    assert not d.session.has_handle
    d.server(wire.SetupComplete())
    assert d.of(commands.Resumed)[-1] == commands.Resumed(state_restored=False, replayed=1)


def test_an_error_frame_on_a_live_connection_is_passed_on_not_fatal() -> None:
    d = driver().live()
    assert d.server(REFUSAL) == ()
    assert d.session.state is S.SETUP_COMPLETE


def test_a_transport_failure_fails_the_session_at_once() -> None:
    d = driver().live()
    d.send(audio("a"))
    d.feed(events.TransportFailed(at=d.now, reason="bad URL: http://x is not a WebSocket URI"))
    (failed,) = d.of(commands.SessionFailed)
    assert failed.reason == "bad URL: http://x is not a WebSocket URI" and failed.seqs == (1,)
    assert d.session.state is S.FAILED


# --- recorders and tool calls (hardening) -------------------------------------------------------------


class BrokenSink(io.StringIO):
    def __init__(self, fail_after: int) -> None:
        super().__init__()
        self.fail_after = fail_after

    def write(self, text: str) -> int:
        if self.fail_after <= 0:
            raise OSError(28, "No space left on device")
        self.fail_after -= 1
        return super().write(text)


def test_a_recorder_that_fails_undoes_the_event_and_says_so() -> None:
    recorded: list[events.Event] = []

    def recorder(event: events.Event) -> None:
        if isinstance(event, events.MessageReceived) and isinstance(event.message, wire.GoAway):
            raise OSError(28, "No space left on device")
        recorded.append(event)

    session = Session(config(), recorder=recorder)
    session.handle(events.Connect(at=0.0))
    session.handle(events.MessageReceived(at=0.1, message=wire.SetupComplete()))
    session.handle(events.MessageReceived(at=0.2, message=update("h1")))
    before = session.snapshot()
    with pytest.raises(RecordingError) as caught:
        session.handle(events.MessageReceived(at=0.3, message=go_away(0.0)))
    assert isinstance(caught.value.__cause__, OSError)
    assert session.snapshot() == before  # the reconnect it would have started did not half-happen
    session.recorder = None
    out = session.handle(events.MessageReceived(at=0.3, message=go_away(0.0)))
    assert any(isinstance(c, commands.ReconnectWithHandle) for c in out)  # and nothing was thrown away


def test_a_journal_on_a_full_disk_fails_loudly_and_the_session_is_unchanged() -> None:
    sink = BrokenSink(fail_after=2)
    session = Session(config(), recorder=journal.Journal(sink))
    session.handle(events.Connect(at=0.0))
    session.handle(events.MessageReceived(at=0.1, message=wire.SetupComplete()))
    before = session.snapshot()
    with pytest.raises(LiveStateError):
        session.handle(events.MessageReceived(at=0.2, message=update("h1")))
    assert session.snapshot() == before


def test_pending_tool_calls_are_capped_and_answered_by_id() -> None:
    d = driver(max_pending_calls=3).live()
    d.server(tool_call("a", "b"))
    before = d.session.snapshot()
    with pytest.raises(
        ProtocolError, match=r"toolCall\.functionCalls: 2 more calls with 2 pending .*max_pending_calls \(3\)"
    ):
        d.server(tool_call("c", "d"))
    assert d.session.snapshot() == before
    d.send(wire.ToolResponse(function_responses=(wire.FunctionResponse(id="b", name="f", response={}),)))
    assert [c.id for c in d.session.snapshot().pending_calls] == ["a"]


def test_id_less_calls_are_answered_by_name_oldest_first() -> None:
    d = driver().live()
    calls = tuple(wire.FunctionCall(name=name, args={}) for name in ("f", "g", "f"))
    d.server(wire.ToolCall(function_calls=calls))
    d.send(wire.ToolResponse(function_responses=(wire.FunctionResponse(name="f", response={}),)))
    assert [c.name for c in d.session.snapshot().pending_calls] == ["g", "f"]
    snapshot = d.session.snapshot()
    assert Session.restore(snapshot).snapshot() == snapshot


def test_the_replay_summary_tells_unconfirmed_from_dropped_and_ignores_superseded_frames() -> None:
    from livestate import timeline
    from livestate.testing.reference import ReferenceDriver

    recorded: list[events.Event] = []
    d = ReferenceDriver(Session(config(), recorder=recorded.append)).live()
    d.server(update("h1"))
    d.send(audio("a"))
    d.send(audio("b"))
    d.close(1006)
    d.server(TURN, connection=1)  # a late frame of the connection the session left
    d.server(wire.SetupComplete())  # the resume replays a and b
    d.feed(events.CloseRequested(at=d.now))
    _, summary = timeline.replay(config(), recorded)
    assert (summary.sent, summary.dropped, summary.unconfirmed) == (2, 0, 2)


def test_a_message_nested_past_the_depth_limit_fails_at_send() -> None:
    d = driver().live()
    deep: object = "leaf"
    for _ in range(100):
        deep = [deep]
    answer = wire.FunctionResponse(id="c", name="f", response={"x": deep})
    before = d.session.snapshot()
    with pytest.raises(UsageError, match=r"would not read back: .*nested more than 64 levels"):
        d.send(wire.ToolResponse(function_responses=(answer,)))
    assert d.session.snapshot() == before


def test_a_flood_past_the_buffer_with_drop_oldest_brings_one_notice_per_tenth() -> None:
    d = driver(max_buffer_messages=100, drop_oldest_when_full=True).live()
    for i in range(400):
        d.send(audio(f"a{i}"))
    notices = d.of(commands.MessagesUnconfirmed)
    assert len(notices) == 30  # 300 evicted, ten at a time: not 300 notices
    assert sorted(seq for n in notices for seq in n.seqs) == list(range(1, 301))
    assert d.buffer.seqs() == list(range(301, 401))


def test_hold_for_reseed_holds_without_asking_for_history_config() -> None:
    d = driver(vertex=True, hold_for_reseed=True).live()
    d.server(update("h1", index=0))
    d.send(audio("a"))
    reject_the_resume(d)
    assert d.of(commands.OpenConnection)[-1].setup.history_config is None
    d.server(wire.SetupComplete())
    assert d.of(commands.Resumed)[-1] == commands.Resumed(state_restored=False, replayed=0, held=1)
    mark = len(d.wire_log)
    d.send(history("context", complete=True))
    assert [type(m) for _, m in d.wire_log[mark:]] == [wire.ClientContent, wire.RealtimeInput]
