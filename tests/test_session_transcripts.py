"""The scripted transcripts of ../shared/fixtures/sessions, played against a Session.

Each test derives the configuration from the script's first setup, plays the server side, and checks what the
session put on the wire (rebuilt from its commands through a real ReplayBuffer) and the notices it gave.
"""

from __future__ import annotations

import attrs

from livestate import Backend, Session, SessionConfig, SessionState, commands, wire

import transcript


def base_setup(name: str, connection: int = 1) -> wire.Setup:
    setup = transcript.expected_wire(name)[connection][0]
    assert isinstance(setup, wire.Setup)
    return attrs.evolve(setup, session_resumption=None, history_config=None)


def test_vertex_drop_replays_exactly_the_unconsumed_messages_renumbered() -> None:
    name = "vertex_transparent_drop_replay"
    config = SessionConfig(setup=base_setup(name), backend=Backend.VERTEX, transparent=True)
    run = transcript.run(name, Session(config))
    assert run.sent == transcript.expected_wire(name)
    # index 3 on conn 1 is seq 3; index 4 on conn 2 is the 4th replayed message (a7 = seq 7); then seq 10.
    assert [c.seq for c in run.notices(commands.TrimThrough)] == [3, 7, 10]
    assert run.notices(commands.ReplayBuffered) == [commands.ReplayBuffered(first_seq=4, last_seq=7)]
    assert run.notices(commands.Resumed) == [commands.Resumed(state_restored=True, replayed=4)]
    assert len(run.buffer) == 0
    assert run.notices(commands.MessagesDropped) == []


def test_vertex_drop_during_replay_keeps_the_buffer_and_replays_it_again() -> None:
    name = "vertex_transparent_replay_interrupted"
    config = SessionConfig(setup=base_setup(name), backend=Backend.VERTEX, transparent=True)
    run = transcript.run(name, Session(config))
    expected = transcript.expected_wire(name)
    assert run.sent[1] == expected[1] and run.sent[3] == expected[3]
    # The script's drop cuts the replay on connection 2 after two messages; the session had handed all four
    # to the transport at once. Connection 3 replays the same four (a3..a6) from index 1 again.
    assert run.sent[2][: len(expected[2])] == expected[2]
    assert run.sent[2][1:] == expected[3][1:5]
    trims = [(at, c.seq) for at, c in run.timeline if isinstance(c, commands.TrimThrough)]
    assert trims == [(0.7, 2), (3.4, 7)]  # nothing trimmed between the two drops
    assert run.notices(commands.Resumed) == [
        commands.Resumed(state_restored=True, replayed=4),
        commands.Resumed(state_restored=True, replayed=4),
    ]
    reconnects = run.notices(commands.ReconnectWithHandle)
    assert [r.handle for r in reconnects] == ["vtx-H1-c0de", "vtx-H1-c0de"]


def test_gemini_goaway_waits_for_turn_complete_and_a_fresh_handle() -> None:
    name = "gemini_goaway_resume"
    run = transcript.run(name, Session(SessionConfig(setup=base_setup(name))))
    assert run.sent == transcript.expected_wire(name)
    closes = [at for at, c in run.timeline if isinstance(c, commands.CloseConnection)]
    reconnects = [(at, c.handle) for at, c in run.timeline if isinstance(c, commands.ReconnectWithHandle)]
    # H3 arrives at 541.65, after turnComplete at 541.6: that is the cut-over, before the 590 s deadline.
    assert closes == [541.65]
    assert reconnects == [(541.65, "c41f8a92-0d7e-4b35-9e26-7a8b1c5d3f42")]
    assert run.timeline.index(
        next(x for x in run.timeline if isinstance(x[1], commands.CloseConnection))
    ) < run.timeline.index(next(x for x in run.timeline if isinstance(x[1], commands.ReconnectWithHandle)))
    assert run.notices(commands.TurnAborted) == []
    assert run.session.state is SessionState.RESUMABLE


def test_pending_tool_call_delays_the_cut_over_until_a_handle_after_the_response() -> None:
    name = "toolcall_pending_goaway"
    run = transcript.run(name, Session(SessionConfig(setup=base_setup(name))))
    assert run.sent == transcript.expected_wire(name)
    reconnects = [(at, c.handle) for at, c in run.timeline if isinstance(c, commands.ReconnectWithHandle)]
    assert reconnects == [(125.35, "f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b")]
    assert run.notices(commands.ToolCallsOrphaned) == []


def test_silent_server_after_goaway_is_left_at_the_deadline_minus_margin() -> None:
    name = "goaway_deadline_1011"
    run = transcript.run(name, Session(SessionConfig(setup=base_setup(name), goaway_margin=5.0)))
    reconnects = [(at, c.handle) for at, c in run.timeline if isinstance(c, commands.ReconnectWithHandle)]
    assert reconnects == [(540.0 + 50.0 - 5.0, "0f9e8d7c-6b5a-4493-8281-7f6e5d4c3b2a")]
    assert len(run.notices(commands.TurnAborted)) == 1
    # Handle-only mode replays what was sent after H1 (482.15 s) minus the guard window: the four audio
    # chunks of 538.5 … 575 s, before the new one. At least once: the duplicate risk is the guard window.
    script_conn1 = transcript.expected_wire(name)[1]
    expected_conn2 = [
        transcript.expected_wire(name)[2][0],
        *script_conn1[-4:],
        *transcript.expected_wire(name)[2][1:],
    ]
    assert run.sent[2] == expected_conn2
    assert run.notices(commands.Resumed) == [commands.Resumed(state_restored=True, replayed=4)]
    # The server's 1011 at 590.4 closes connection 1, which the session already left: ignored.
    assert run.session.state is SessionState.RESUMABLE
    assert run.session.connection == 2


def test_rejected_resume_falls_back_to_a_fresh_session_that_asks_for_history() -> None:
    name = "resume_rejected_1007_fresh"
    config = SessionConfig(setup=base_setup(name, 2), reseed_history=True)
    # A session persisted by an earlier process: it holds a handle and had been established.
    earlier = Session(config).snapshot()
    stale = attrs.evolve(earlier, handle="2d9f4e61-8c0a-4b7e-a3d5-6f1b0c8e9a27", established=True)
    run = transcript.run(name, Session.restore(stale))
    assert run.sent == transcript.expected_wire(name)
    assert run.notices(commands.Resumed) == [commands.Resumed(state_restored=False, replayed=0)]
    assert run.session.has_handle
    assert run.session.state is SessionState.RESUMABLE
