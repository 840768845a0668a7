"""Session behaviour, one scenario per rule of the issue, driven by hand with a float clock."""

from __future__ import annotations

import pytest

from livestate import (
    CloseAction,
    CloseRule,
    ProtocolError,
    Session,
    SessionState,
    UsageError,
    commands,
    events,
    wire,
)
from livestate.events import Timer
from livestate.policy import backoff_delay
from livestate.testing.reference import ReferenceDriver

from helpers import (
    TURN,
    TURN_COMPLETE,
    audio,
    config,
    driver,
    go_away,
    tool_call,
    tool_response,
    update,
)

S = SessionState


# --- 1. lifecycle -------------------------------------------------------------------------------


def test_connect_opens_a_resumable_fresh_session() -> None:
    d = driver()
    out = d.connect()
    opened = [c for c in out if isinstance(c, commands.OpenConnection)]
    assert len(opened) == 1
    assert opened[0].setup.session_resumption == wire.SessionResumptionConfig()
    assert wire.encode(opened[0].setup).count('"sessionResumption":{}') == 1
    assert d.session.state is S.CONNECTING
    assert commands.StartTimer(timer=Timer.SETUP, deadline=15.0) in out


def test_vertex_transparent_setup_asks_for_transparent() -> None:
    d = driver(vertex=True)
    (opened,) = [c for c in d.connect() if isinstance(c, commands.OpenConnection)]
    assert opened.setup.session_resumption == wire.SessionResumptionConfig(transparent=True)


def test_transparent_on_the_gemini_api_is_refused_when_the_config_is_made() -> None:
    with pytest.raises(UsageError, match="VERTEX"):
        config(transparent=True)


def test_setup_complete_then_updates_move_between_live_states() -> None:
    d = driver().live()
    assert d.session.state is S.SETUP_COMPLETE
    d.server(update("h1"))
    assert d.session.state is S.RESUMABLE
    d.server(update(resumable=False))
    assert d.session.state is S.GENERATING
    d.server(update("h2"))
    assert d.session.state is S.RESUMABLE
    changes = d.of(commands.StateChanged)
    assert [(c.old, c.new) for c in changes] == [
        (S.IDLE, S.CONNECTING),
        (S.CONNECTING, S.SETUP_COMPLETE),
        (S.SETUP_COMPLETE, S.RESUMABLE),
        (S.RESUMABLE, S.GENERATING),
        (S.GENERATING, S.RESUMABLE),
    ]


def test_close_requested_closes_the_connection_and_absorbs_everything_after() -> None:
    d = driver().live()
    out = d.feed(events.CloseRequested(at=1.0))
    assert commands.CloseConnection(code=1000, reason="livestate: closed by the application") in out
    assert d.session.state is S.CLOSED
    assert d.session.next_deadline() is None
    assert d.close(1000) == ()
    assert d.feed(events.TimerFired(at=2.0, timer=Timer.HEALTHY)) == ()
    assert d.server(TURN) == ()  # a late server frame is not a client message: nothing to hand back
    with pytest.raises(UsageError):
        d.send(audio("late"))
    with pytest.raises(UsageError):
        d.connect()
    assert d.feed(events.CloseRequested(at=3.0)) == ()


def test_no_setup_complete_in_time_fails_the_attempt_and_retries() -> None:
    d = driver(setup_timeout=2.0)
    d.connect()
    d.advance(2.0)
    assert d.session.state is S.RECONNECTING
    assert commands.CloseConnection(code=1000, reason="livestate: no setupComplete in time") in d.log
    # The first attempt of the outage was the connect itself; the retry waits for a backoff.
    d.advance(60.0)
    opened = d.of(commands.OpenConnection)
    assert [o.attempt for o in opened] == [1, 2, 3, 4, 5]
    assert d.session.state is S.FAILED
    assert len(d.of(commands.SessionFailed)) == 1
    assert "budget" in d.of(commands.SessionFailed)[0].reason


def test_events_before_connect_are_usage_errors() -> None:
    d = driver()
    with pytest.raises(UsageError):
        d.send(audio("x"))
    with pytest.raises(UsageError):
        d.server(TURN)
    assert d.session.state is S.IDLE


def test_content_before_setup_complete_is_a_protocol_error_and_changes_nothing() -> None:
    d = driver()
    d.connect()
    before = d.session.snapshot()
    with pytest.raises(ProtocolError, match="serverContent before setupComplete"):
        d.server(TURN)
    assert d.session.snapshot() == before


def test_a_second_setup_complete_is_a_protocol_error() -> None:
    d = driver().live()
    with pytest.raises(ProtocolError, match="second"):
        d.server(wire.SetupComplete())


def test_the_application_may_not_send_setup() -> None:
    d = driver().live()
    with pytest.raises(UsageError, match="setup"):
        d.send(wire.Setup(model="m"))


# --- 2. handles ---------------------------------------------------------------------------------


def test_only_resumable_non_empty_handles_are_stored_and_the_last_good_one_is_kept() -> None:
    d = driver().live()
    d.server(update("good"))
    d.server(update(resumable=False))
    d.server(wire.SessionResumptionUpdate(new_handle="", resumable=True))
    d.server(wire.SessionResumptionUpdate(new_handle="not-resumable", resumable=False))
    d.server(wire.SessionResumptionUpdate())
    d.close(1006)
    d.advance(1.0)  # not yet healthy: the reconnect is attempt 2 of the outage and backs off
    (reconnect,) = d.of(commands.ReconnectWithHandle)
    assert reconnect.handle == "good"
    assert reconnect.setup.session_resumption == wire.SessionResumptionConfig(handle="good")


def test_a_handle_past_its_lifetime_is_not_used() -> None:
    d = driver(handle_ttl=1.0, backoff_initial=5.0, backoff_jitter=0.0)
    d.live()
    d.server(update("h1"))  # progress: the drop starts a new outage, whose first attempt is immediate
    d.close(1006)
    assert len(d.of(commands.ReconnectWithHandle)) == 1
    d.close(1006)  # that resume never reached setupComplete: attempt 2 backs off 5 s, past the handle's life
    d.advance(5.0)
    assert len(d.of(commands.ReconnectWithHandle)) == 1
    (fresh,) = d.of(commands.OpenConnection)[1:]
    assert fresh.setup.session_resumption == wire.SessionResumptionConfig()


def test_a_handle_within_its_lifetime_is_used() -> None:
    d = driver(handle_ttl=10.0, backoff_initial=5.0, backoff_jitter=0.0)
    d.live()
    d.server(update("h1"))
    d.close(1006)
    d.advance(5.0)
    assert [r.handle for r in d.of(commands.ReconnectWithHandle)] == ["h1"]


# --- 3. transparent mode ------------------------------------------------------------------------


def test_sends_are_sent_and_buffered_and_trimmed_by_the_index() -> None:
    d = driver(vertex=True).live()
    for i in range(5):
        out = d.send(audio(f"a{i + 1}"))
        assert [type(c) for c in out] == [commands.SendMessage, commands.BufferMessage]
        assert out[0].seq == out[1].seq == i + 1
    out = d.server(update("h1", index=3))
    assert commands.TrimThrough(seq=3) in out
    assert d.buffer.seqs() == [4, 5]


def test_the_index_origin_is_a_knob() -> None:
    d = driver(vertex=True, first_client_index=0).live()
    for i in range(3):
        d.send(audio(f"a{i}"))
    d.server(update("h1", index=0))  # with origin 0, index 0 is the first message
    assert d.buffer.seqs() == [2, 3]


@pytest.mark.parametrize(("index", "problem"), [(1, "went backwards"), (6, "past the last message")])
def test_impossible_indexes_are_protocol_errors_and_change_nothing(index: int, problem: str) -> None:
    d = driver(vertex=True).live()
    for i in range(5):
        d.send(audio(f"a{i}"))
    d.server(update("h1", index=2))
    before = d.session.snapshot()
    with pytest.raises(ProtocolError, match=problem):
        d.server(update("h2", index=index))
    assert d.session.snapshot() == before


def test_an_index_on_a_not_resumable_update_trims_nothing() -> None:
    d = driver(vertex=True).live()
    for i in range(3):
        d.send(audio(f"a{i}"))
    out = d.server(update(resumable=False, index=3))
    assert not any(isinstance(c, commands.TrimThrough) for c in out)
    assert d.buffer.seqs() == [1, 2, 3]


def test_sends_while_reconnecting_are_buffered_and_go_out_in_the_replay_before_anything_new() -> None:
    d = driver(vertex=True).live()
    d.server(update("h1"))
    d.send(audio("a1"))
    d.close(1006)
    out = d.send(audio("a2"))
    assert [type(c) for c in out] == [commands.BufferMessage]
    d.advance(1.0)
    d.server(wire.SetupComplete(), connection=2)
    d.send(audio("a3"))
    assert [(conn, m.text) for conn, m in d.wire_log] == [(1, "a1"), (2, "a1"), (2, "a2"), (2, "a3")]
    # and on connection 2 they are indexes 1, 2, 3: an update with index 2 trims a1 and a2.
    d.server(update("h2", index=2))
    assert d.buffer.seqs() == [3]


# --- 4. handle-only mode ------------------------------------------------------------------------


def test_handle_only_trims_what_was_sent_before_the_guard_window() -> None:
    d = driver(guard_window=2.0).live()
    for t in (1.0, 2.0, 3.0, 4.0):
        d.at(t).send(audio(f"a{t}"))
    d.at(5.0).server(update("h1"))  # horizon 3.0: a1 and a2 are trimmed, a3 (at 3.0) and a4 kept
    assert d.buffer.seqs() == [3, 4]
    d.close(1006)
    d.advance(1.0)
    d.server(wire.SetupComplete(), connection=2)
    assert [m.text for conn, m in d.wire_log if conn == 2] == ["a3.0", "a4.0"]
    assert d.of(commands.Resumed) == [commands.Resumed(state_restored=True, replayed=2)]


# --- 5. goAway ----------------------------------------------------------------------------------


def test_go_away_arms_a_deadline_timer_at_time_left_minus_margin() -> None:
    d = driver(goaway_margin=5.0).live()
    d.server(update("h1"))
    d.server(TURN)  # a turn in flight: no immediate cut-over
    out = d.at(100.0).server(go_away(50.0))
    assert commands.StartTimer(timer=Timer.GO_AWAY, deadline=145.0) in out
    assert d.session.state is S.GOING_AWAY
    assert d.session.next_deadline() == 145.0


def test_go_away_at_a_safe_point_reconnects_at_once() -> None:
    d = driver().live()
    d.server(update("h1"))
    out = d.server(go_away(50.0))
    kinds = [type(c) for c in out]
    assert kinds.index(commands.CloseConnection) < kinds.index(commands.ReconnectWithHandle)
    assert d.session.state is S.RECONNECTING


def test_go_away_mid_turn_waits_for_turn_complete_and_a_fresh_handle() -> None:
    d = driver().live()
    d.server(update("h1"))
    d.server(TURN)
    d.server(update(resumable=False))
    d.server(go_away(50.0))
    d.server(TURN_COMPLETE)
    assert d.session.state is S.GOING_AWAY  # resumable is still false
    d.server(update("h2"))
    assert [r.handle for r in d.of(commands.ReconnectWithHandle)] == ["h2"]
    assert d.of(commands.TurnAborted) == []


def test_go_away_deadline_forces_the_reconnect_even_if_the_server_goes_silent() -> None:
    d = driver(goaway_margin=5.0).live()
    d.server(update("h1"))
    d.server(TURN)
    d.at(10.0).server(go_away(50.0))
    d.advance(44.9)
    assert d.session.state is S.GOING_AWAY
    d.advance(0.1)
    assert [r.handle for r in d.of(commands.ReconnectWithHandle)] == ["h1"]
    assert len(d.of(commands.TurnAborted)) == 1


@pytest.mark.parametrize("time_left", [None, 0.0, 3.0])
def test_go_away_without_time_or_inside_the_margin_reconnects_now(time_left: float | None) -> None:
    d = driver(goaway_margin=5.0).live()
    d.server(update("h1"))
    d.server(TURN)
    d.server(go_away(time_left))
    assert d.session.state is S.RECONNECTING
    assert len(d.of(commands.ReconnectWithHandle)) == 1
    assert not any(c.timer is Timer.GO_AWAY for c in d.of(commands.StartTimer))  # no timer left to go stale


def test_a_later_go_away_never_postpones_the_deadline() -> None:
    d = driver(goaway_margin=0.0).live()
    d.server(update("h1"))
    d.server(TURN)
    d.server(go_away(30.0))
    d.server(go_away(60.0))
    assert d.session.deadlines()[Timer.GO_AWAY] == 30.0


# --- 6. reconnect -------------------------------------------------------------------------------


def test_events_from_a_superseded_connection_are_ignored() -> None:
    d = driver().live()
    d.server(update("h1"))
    d.server(go_away(50.0))  # safe point: closes connection 1, opens connection 2
    assert d.session.connection == 2
    assert d.close(1000, connection=1) == ()
    out = d.server(TURN, connection=1)
    assert out == ()  # server frames of a connection the session left: ignored, nothing was dropped
    d.server(wire.SetupComplete(), connection=2)
    assert d.session.state is S.SETUP_COMPLETE


# --- 7. unexpected close ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason", "retries"),
    [
        (1000, "", True),
        (1001, "", True),
        (1006, "", True),
        (1008, "The operation was aborted.", True),
        (1011, "Internal error encountered.", True),
        (1011, "Deadline expired before operation could complete.", True),
        (1007, "Request contains an invalid argument.", False),
        (1008, "Requested entity was not found", False),
    ],
)
def test_default_close_classification_on_a_live_connection(code: int, reason: str, retries: bool) -> None:
    d = driver().live()
    d.server(update("h1"))
    d.close(code, reason)
    d.advance(1.0)
    assert d.session.state is (S.RECONNECTING if retries else S.FAILED)
    assert bool(d.of(commands.ReconnectWithHandle)) is retries


def test_the_close_table_can_be_overridden() -> None:
    rules = (CloseRule(code=1011, reason_contains="insufficient model resources", action=CloseAction.FATAL),)
    d = driver(close_rules=rules).live()
    d.close(1011, "Request trace id: 1, [ORIGINAL ERROR] Insufficient model resources")
    assert d.session.state is S.FAILED
    assert "fatal" in d.of(commands.SessionFailed)[0].reason


def test_backoff_grows_is_capped_and_is_deterministic_for_a_seed() -> None:
    cfg = config(backoff_initial=1.0, backoff_factor=2.0, backoff_max=5.0, backoff_jitter=0.5, seed=7)
    delays = [backoff_delay(cfg, attempt, draw=attempt) for attempt in range(1, 8)]
    assert delays[0] == 0.0
    for attempt, delay in enumerate(delays[1:], start=2):
        ceiling = min(5.0, 2.0 ** (attempt - 2))
        assert ceiling * 0.5 <= delay <= ceiling
    assert delays == [backoff_delay(cfg, a, draw=a) for a in range(1, 8)]
    other = config(backoff_initial=1.0, backoff_factor=2.0, backoff_max=5.0, backoff_jitter=0.5, seed=8)
    assert delays != [backoff_delay(other, a, draw=a) for a in range(1, 8)]


def test_a_healthy_connection_resets_the_outage_budget_but_not_the_session_budget() -> None:
    d = driver(max_attempts_per_outage=2, max_attempts_per_session=4, healthy_after=10.0)
    d.live()
    d.advance(10.0)  # healthy: the outage count resets
    for _ in range(3):
        d.close(1006)
        d.server(wire.SetupComplete())
        d.advance(10.0)
    assert d.session.state is S.SETUP_COMPLETE
    d.close(1006)  # a fifth attempt would exceed the session budget of 4
    assert d.session.state is S.FAILED


def test_an_unhealthy_flapping_connection_spends_the_outage_budget() -> None:
    d = driver(max_attempts_per_outage=3, healthy_after=10.0)
    d.live()
    for _ in range(2):
        d.advance(1.0)
        d.close(1006)
        d.advance(60.0)
        d.server(wire.SetupComplete())
    d.close(1006)
    assert d.session.state is S.FAILED


def test_a_rejected_resume_starts_a_fresh_session_and_says_state_was_not_restored() -> None:
    d = driver().live()
    d.server(update("h1"))
    d.send(audio("said before the drop"))
    d.close(1006)
    d.advance(1.0)
    assert len(d.of(commands.ReconnectWithHandle)) == 1
    d.close(1007, "Request contains an invalid argument.")  # on the resume attempt, before setupComplete
    d.advance(2.0)
    fresh = d.of(commands.OpenConnection)[-1]
    assert fresh.setup.session_resumption == wire.SessionResumptionConfig()
    d.server(wire.SetupComplete())
    # By default the unconsumed input goes into the fresh session: nothing is lost.
    assert d.of(commands.Resumed) == [commands.Resumed(state_restored=False, replayed=1)]
    assert d.of(commands.MessagesDropped) == []
    assert d.wire_log[-1] == (d.session.connection, audio("said before the drop"))
    assert not d.session.has_handle


def test_a_rejected_fresh_setup_is_fatal() -> None:
    d = driver()
    d.connect()
    d.close(1007, "Request contains an invalid argument.")
    assert d.session.state is S.FAILED


# --- 8. tool calls ------------------------------------------------------------------------------


def test_calls_issued_after_the_resumed_handle_are_orphaned_and_their_answers_not_replayed() -> None:
    d = driver(vertex=True).live()
    d.server(tool_call("before"))
    d.server(update("h1"))  # h1 knows the call "before"
    d.server(tool_call("after-1", "after-2"))
    d.send(tool_response("before"))
    d.send(tool_response("after-1"))
    d.close(1006)
    d.advance(1.0)
    orphaned = d.of(commands.ToolCallsOrphaned)
    assert orphaned == [commands.ToolCallsOrphaned(ids=("after-2", "after-1"))]
    assert commands.DropBuffered(seqs=(2,)) in d.log
    dropped = d.of(commands.MessagesDropped)
    assert [m.count for m in dropped] == [1]
    d.server(wire.SetupComplete())
    assert [m.function_responses[0].id for _, m in d.wire_log[2:]] == ["before"]


def test_cancelled_calls_are_no_longer_pending() -> None:
    d = driver().live()
    d.server(update("h1"))
    d.server(tool_call("c1"))
    d.server(TURN_COMPLETE)
    d.server(wire.ToolCallCancellation(ids=("c1",)))
    d.server(update("h2"))
    d.server(go_away(30.0))
    assert d.session.state is S.RECONNECTING  # nothing pending: safe point


def test_a_turn_cut_by_a_reconnect_is_reported() -> None:
    d = driver().live()
    d.server(update("h1"))
    d.server(TURN)
    d.close(1006)
    assert d.of(commands.TurnAborted) == [commands.TurnAborted()]


def test_interaction_in_progress_keeps_the_turn_open() -> None:
    d = driver().live()
    d.server(update("h1"))
    d.server(TURN)
    d.server(wire.ServerContent(turn_complete=True, interaction_status="IN_PROGRESS"))
    d.close(1006)
    assert len(d.of(commands.TurnAborted)) == 1


# --- 9. notices ---------------------------------------------------------------------------------


def test_buffer_limits_drop_the_oldest_with_a_notice_when_opted_in() -> None:
    d = driver(vertex=True, max_buffer_messages=3, drop_oldest_when_full=True).live()
    for i in range(5):
        d.send(audio(f"a{i}"))
    assert d.buffer.seqs() == [3, 4, 5]
    # They went out but were not confirmed: handed back as unconfirmed, each naming its message.
    assert [m.seqs for m in d.of(commands.MessagesUnconfirmed)] == [(1,), (2,)]
    assert d.of(commands.MessagesDropped) == []
    d.server(update("h1", index=4))  # index 4 on this connection is seq 4
    assert d.buffer.seqs() == [5]


def test_byte_limit_counts_payload_sizes() -> None:
    d = driver(max_buffer_bytes=200, drop_oldest_when_full=True).live()
    d.send(wire.RealtimeInput(audio=wire.Blob(mime_type="audio/pcm", data="A" * 100)))
    d.send(wire.RealtimeInput(audio=wire.Blob(mime_type="audio/pcm", data="B" * 100)))
    assert d.buffer.seqs() == [2]


def test_closing_reports_unconfirmed_messages() -> None:
    d = driver(vertex=True).live()
    d.send(audio("a"))
    d.send(audio("b"))
    out = d.feed(events.CloseRequested(at=1.0))
    handed_back = [c for c in out if isinstance(c, commands.MessagesUnconfirmed | commands.MessagesDropped)]
    assert handed_back == [
        commands.MessagesUnconfirmed(
            count=2, reason="the session closed before the server confirmed them", seqs=(1, 2)
        )
    ]


# --- 10. event sourcing, snapshots, secrets -----------------------------------------------------


def scripted(d: ReferenceDriver) -> None:
    """Connect, trim, a goAway mid-turn drained at turnComplete, a drop, a backoff."""
    d.live()
    d.send(audio("a1"))
    d.server(update("secret-handle-1", index=1))
    d.server(TURN)
    d.at(5.0).server(go_away(20.0))
    d.send(audio("a2"))
    d.server(TURN_COMPLETE)  # safe point: close connection 1, resume on 2
    d.server(update("secret-handle-x", index=2), connection=1)  # late: superseded
    d.at(5.5).server(wire.SetupComplete(), connection=2)
    d.server(update("secret-handle-2", index=1), connection=2)
    d.send(audio("a3"))
    d.at(6.0).close(1006, connection=2)
    d.advance(3.0)


def test_replay_rebuilds_the_same_state_and_the_same_commands() -> None:
    recorded: list[events.Event] = []
    d = driver(vertex=True)
    d.session.recorder = recorded.append
    scripted(d)
    again = []
    replayed = Session(d.session.config)
    for event in recorded:
        again.extend(replayed.handle(event))
    assert again == d.log
    assert [wire.encode(c.message) for c in again if isinstance(c, commands.SendMessage)] == [
        wire.encode(c.message) for c in d.log if isinstance(c, commands.SendMessage)
    ]
    assert Session.replay(d.session.config, recorded).snapshot() == d.session.snapshot()


def test_a_snapshot_plus_the_later_events_rebuilds_the_session() -> None:
    recorded: list[events.Event] = []
    d = driver(vertex=True)
    d.session.recorder = recorded.append
    d.live()
    d.send(audio("a1"))
    d.server(update("h1", index=1))
    snapshot, mark = d.session.snapshot(), len(recorded)
    d.send(audio("a2"))
    d.close(1006)
    d.advance(1.0)
    rebuilt = Session.restore(snapshot)
    for event in recorded[mark:]:
        rebuilt.handle(event)
    assert rebuilt.snapshot() == d.session.snapshot()


def test_a_session_without_recorder_keeps_nothing_per_event() -> None:
    d = driver(vertex=True).live()
    d.server(update("h1", index=0))
    for i in range(2_000):
        d.send(audio(str(i)))
        d.server(TURN)
        d.server(update(f"h{i}", index=i + 1))
    s = d.session.snapshot()
    assert len(s.unconsumed) == 0 and s.pending_calls == () and len(s.timers) == 1
    assert s.buffered_bytes == 0


def test_handles_never_show_in_reprs() -> None:
    d = driver()
    scripted(d)
    for obj in (d.session, d.session.snapshot(), *d.log):
        assert "secret-handle" not in repr(obj)


def test_a_restore_in_another_clock_moves_every_stored_time() -> None:
    d = driver(healthy_after=10.0).live()
    d.at(4.0).server(update("h1"))
    snapshot = d.session.snapshot()
    assert snapshot.last_at == 4.0 and snapshot.timers == ((Timer.HEALTHY, 10.0),)
    moved = Session.restore(snapshot, at=1000.0, elapsed=3.0)  # the new clock reads 1000; 3 s went by
    assert moved.deadlines() == {Timer.HEALTHY: 1000.0 - 3.0 + 6.0}
    assert moved.snapshot().last_at == 997.0
    assert Session.restore(snapshot).snapshot() == snapshot


@pytest.mark.parametrize(("elapsed", "resumes"), [(60.0, True), (7300.0, False)])
def test_a_handle_outlives_a_restart_only_within_its_lifetime(elapsed: float, resumes: bool) -> None:
    d = driver(backoff_initial=1.0, backoff_jitter=0.0).live()
    d.at(1.0).server(update("h1"))
    d.at(2.0).close(1006)  # the first reconnect after progress is immediate ...
    d.at(2.5).close(
        1006
    )  # ... and fails before setupComplete: the next backs off; the process dies meanwhile
    restarted = Session.restore(d.session.snapshot(), at=0.0, elapsed=elapsed)
    timer, deadline = next(iter(restarted.deadlines().items()))
    assert timer is Timer.BACKOFF and deadline < 0.0  # overdue in the new clock
    out = restarted.handle(events.TimerFired(at=0.0, timer=timer))
    opened = [c for c in out if isinstance(c, commands.OpenConnection | commands.ReconnectWithHandle)]
    assert [type(c) for c in opened] == [commands.ReconnectWithHandle if resumes else commands.OpenConnection]


def test_resume_re_arms_the_timers_and_reports_the_connection_the_old_process_held() -> None:
    d = driver(healthy_after=10.0).live()
    d.at(1.0).server(update("h1"))
    d.send(audio("unconfirmed"))
    restored = Session.restore(d.session.snapshot(), at=0.0, elapsed=2.0)
    out = restored.resume(0.0)
    # Armed for 10.0 on the old clock; the snapshot was taken at 1.0 and 2 s went by: 7 s left at the new 0.0.
    assert out[0] == commands.StartTimer(timer=Timer.HEALTHY, deadline=7.0)
    reconnect = next(c for c in out if isinstance(c, commands.ReconnectWithHandle))
    assert reconnect.handle == "h1" and restored.state is S.RECONNECTING
    idle = Session.restore(driver().session.snapshot())
    assert idle.resume(0.0) == ()  # nothing held, nothing armed: nothing to do
