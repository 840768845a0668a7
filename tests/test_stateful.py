"""Random sessions against a reference model of what the server consumed.

The model is a small fake server written from PROTOCOL.md §4: a handle names the conversation as it was when
issued; an update with index k on a connection says messages 1..k of that connection are in that
conversation; resuming from a handle restores exactly its conversation. Hypothesis drives the public API
with sends, updates, goAways, drops, rejected resumes, tool calls and time, through livestate's reference
transport (``ReferenceDriver``, which the model follows command by command), and checks after every step:

- transparent mode loses nothing and duplicates nothing; handle-only mode loses nothing;
- only the latest resumable handle is ever used to resume;
- CLOSED and FAILED absorb everything;
- a goAway deadline is never later than ``at + timeLeft``;
- nothing goes on the wire before ``setupComplete``;
- at the end, replaying the recorded events reproduces the same commands and state.
"""

from __future__ import annotations

from typing import Any

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from livestate import Session, SessionState, commands, events, snapshots, wire
from livestate.events import Timer
from livestate.testing.reference import ReferenceDriver

from helpers import TURN, TURN_COMPLETE, config, go_away, tool_call, tool_response

S = SessionState
TERMINAL = {S.CLOSED, S.FAILED}


@attrs.define
class ReferenceServer:
    """What the server has: issued handles and their conversations, and the connection in progress."""

    handles: dict[str, tuple[str, ...]] = attrs.field(factory=dict)
    forgotten: set[str] = attrs.field(factory=set)
    latest: str | None = None
    #: The connection the server is talking on, and whether setupComplete went out on it.
    connection: int | None = None
    resume_from: str | None = None
    live: bool = False
    #: The conversation this connection started from, and what it received since (id, time).
    base: tuple[str, ...] = ()
    received: list[tuple[str, float]] = attrs.field(factory=list)
    consumed: int = 0
    #: Tool calls the current conversation issued, and those each handle's conversation knows.
    calls: set[str] = attrs.field(factory=set)
    handle_calls: dict[str, frozenset[str]] = attrs.field(factory=dict)
    handle_count: int = 0

    def conversation(self) -> tuple[str, ...]:
        return self.base + tuple(i for i, _ in self.received)


class Lifecycle(RuleBasedStateMachine):
    transparent = True

    def __init__(self) -> None:
        super().__init__()
        self.config = config(
            vertex=self.transparent,
            setup_timeout=5.0,
            goaway_margin=1.0,
            guard_window=0.5,
            healthy_after=3.0,
            backoff_initial=0.2,
            backoff_max=1.0,
            max_attempts_per_outage=50,
            max_attempts_per_session=10_000,
        )
        self.recorded: list[events.Event] = []
        self.session = Session(self.config, recorder=self.recorded.append)
        self.server = ReferenceServer()
        # livestate's reference transport carries out the commands; the model follows along.
        self.driver = ReferenceDriver(self.session, on_command=self.carry_out, on_wire=self.deliver)
        self.buffer = self.driver.buffer
        self.sent_ids: list[str] = []
        self.seq_ids: dict[int, str] = {}
        self.dropped_ids: set[str] = set()
        self.lost_with_notice: set[str] = set()
        self.go_away_limit: float | None = None
        self.was_terminal: S | None = None
        self.pending_calls: list[str] = []
        self.counter = 0
        #: Independent account of every seq: confirmed by a trim, or handed back by a notice.
        self.confirmed: set[int] = set()
        self.returned: list[int] = []
        self.driver.connect()

    # --- plumbing ----------------------------------------------------------------------------------

    @property
    def now(self) -> float:
        return self.driver.now

    @property
    def log(self) -> list[commands.Command]:
        return self.driver.log

    def carry_out(self, command: commands.Command) -> None:
        """What the server and the application learn from a command, before the driver carries it out."""
        server = self.server
        if isinstance(command, commands.CloseConnection):
            server.connection, server.live = None, False
        elif isinstance(command, commands.OpenConnection | commands.ReconnectWithHandle):
            assert server.connection is None or not server.live or server.connection != command.connection
            server.connection, server.live = command.connection, False
            server.resume_from = command.handle if isinstance(command, commands.ReconnectWithHandle) else None
            if isinstance(command, commands.ReconnectWithHandle):
                assert command.handle == server.latest, "resumed from a handle that is not the latest"
                assert command.setup.session_resumption is not None
                assert command.setup.session_resumption.handle == command.handle
        elif isinstance(command, commands.BufferMessage):
            self.seq_ids[command.seq] = self.tag(command.message)
        elif isinstance(command, commands.DropBuffered):
            self.dropped_ids |= {self.seq_ids[s] for s in command.seqs}
        elif isinstance(command, commands.TrimThrough):
            self.confirmed |= {s for s in self.buffer.seqs() if s <= command.seq}
        elif isinstance(command, commands.TrimSeqs):
            self.confirmed |= set(command.seqs)
        elif isinstance(command, commands.MessagesDropped | commands.MessagesUnconfirmed):
            self.returned.extend(command.seqs)
        elif isinstance(command, commands.ToolCallsOrphaned):
            self.pending_calls = [c for c in self.pending_calls if c not in command.ids]

    @staticmethod
    def tag(message: wire.ClientMessage) -> str:
        if isinstance(message, wire.ToolResponse):
            assert message.function_responses
            return f"response:{message.function_responses[0].id}"
        assert isinstance(message, wire.RealtimeInput) and message.text is not None
        return message.text

    def deliver(self, connection: int, message: wire.ClientMessage) -> None:
        """A client message reaches the server (sent, or replayed from the buffer)."""
        assert self.server.live, "a client message went out before setupComplete"
        assert self.server.connection == self.session.connection
        tag = self.tag(message)
        if tag.startswith("response:"):
            assert tag.removeprefix("response:") in self.server.calls, (
                "answer to a call this session never issued"
            )
        self.server.received.append((tag, self.now))

    def server_event(self, message: wire.ServerMessage) -> None:
        self.driver.server(message, connection=self.server.connection)

    @property
    def active(self) -> bool:
        return self.session.state not in TERMINAL

    # --- the application -----------------------------------------------------------------------------

    @precondition(lambda self: self.active)
    @rule(count=st.integers(1, 4))
    def app_sends(self, count: int) -> None:
        for _ in range(count):
            self.counter += 1
            tag = f"m{self.counter}"
            self.sent_ids.append(tag)
            self.driver.send(wire.RealtimeInput(text=tag))

    @precondition(lambda self: self.active and bool(self.pending_calls))
    @rule()
    def app_answers_a_tool_call(self) -> None:
        call = self.pending_calls.pop(0)
        self.sent_ids.append(f"response:{call}")
        self.driver.send(tool_response(call))

    @rule()
    def app_closes(self) -> None:
        if self.counter > 30:  # late in a run, so most runs exercise reconnects first
            self.driver.feed(events.CloseRequested(at=self.now))

    @rule(dt=st.sampled_from([0.05, 0.3, 1.0, 4.0]))
    def time_passes(self, dt: float) -> None:
        self.driver.advance(dt)  # every timer due meanwhile fires, at its deadline

    # --- the server ----------------------------------------------------------------------------------

    @precondition(lambda self: self.server.connection is not None and not self.server.live)
    @rule()
    def server_answers_setup(self) -> None:
        server = self.server
        handle = server.resume_from
        if handle is not None and handle in server.forgotten:
            self.driver.close(1007, "Request contains an invalid argument.", connection=server.connection)
            server.connection = None
            return
        fresh_after_loss = handle is None and self.session.snapshot().established
        if handle is None and server.latest is not None:
            # A new server-side session: the old conversation is gone; the session must say so.
            self.lost_with_notice |= set(server.handles[server.latest])
            server.latest = None
        server.live, server.received, server.consumed = True, [], 0
        server.base = server.handles[handle] if handle else ()
        server.calls = set(server.handle_calls[handle]) if handle else set()
        mark = len(self.log)
        self.server_event(wire.SetupComplete())
        resumed = [c for c in self.log[mark:] if isinstance(c, commands.Resumed)]
        if fresh_after_loss:
            assert [r.state_restored for r in resumed] == [False]
        elif handle is not None:
            assert [r.state_restored for r in resumed] == [True]

    @precondition(lambda self: self.server.live)
    @rule(fraction=st.floats(0, 1), lag=st.floats(0, 0.5))
    def server_issues_a_handle(self, fraction: float, lag: float) -> None:
        server = self.server
        if self.transparent:
            k = server.consumed + round(fraction * (len(server.received) - server.consumed))
        else:  # no index: the handle covers what arrived up to a lag no longer than the guard window
            k = max(server.consumed, sum(1 for _, t in server.received if t < self.now - lag))
        server.consumed = k
        server.handle_count += 1
        handle = f"H{server.handle_count}"
        server.handles[handle] = server.base + tuple(i for i, _ in server.received[:k])
        server.handle_calls[handle] = frozenset(server.calls)
        server.latest = handle
        index = wire.MessageIndex(k) if self.transparent else None
        self.server_event(
            wire.SessionResumptionUpdate(
                new_handle=handle, resumable=True, last_consumed_client_message_index=index
            )
        )

    @precondition(lambda self: self.server.live)
    @rule(fraction=st.floats(0, 1), lag=st.floats(0, 0.5))
    def server_issues_another_handle(self, fraction: float, lag: float) -> None:
        self.server_issues_a_handle(fraction, lag)  # twice as likely as the other server rules

    @precondition(lambda self: self.server.live)
    @rule()
    def server_is_not_resumable(self) -> None:
        self.server_event(wire.SessionResumptionUpdate(resumable=False))

    @precondition(lambda self: self.server.live)
    @rule(complete=st.booleans())
    def server_speaks(self, complete: bool) -> None:
        self.server_event(TURN_COMPLETE if complete else TURN)

    @precondition(lambda self: self.server.live)
    @rule()
    def server_calls_a_tool(self) -> None:
        self.counter += 1
        call = f"call{self.counter}"
        self.pending_calls.append(call)
        self.server.calls.add(call)
        self.server_event(tool_call(call))

    @precondition(lambda self: self.server.live)
    @rule(time_left=st.sampled_from([None, 0.0, 0.5, 3.0, 20.0]))
    def server_goes_away(self, time_left: float | None) -> None:
        self.server_event(go_away(time_left))
        if self.session.state is S.GOING_AWAY and time_left is not None:
            limit = self.now + time_left
            self.go_away_limit = limit if self.go_away_limit is None else min(limit, self.go_away_limit)

    @precondition(lambda self: self.server.connection is not None)
    @rule(
        close=st.sampled_from(
            [(1006, ""), (1011, "Internal error encountered."), (1000, ""), (1008, "aborted")]
        ),
        chance=st.integers(0, 3),
    )
    def connection_drops(self, close: tuple[int, str], chance: int) -> None:
        if chance:
            return  # a drop is one draw in four, so sessions also get to live a little
        connection = self.server.connection
        self.server.connection, self.server.live = None, False
        self.driver.close(close[0], close[1], connection=connection)

    @precondition(lambda self: self.server.latest is not None)
    @rule(chance=st.integers(0, 3))
    def server_forgets_the_latest_handle(self, chance: int) -> None:
        if chance:
            return
        assert self.server.latest is not None
        self.server.forgotten.add(self.server.latest)

    # --- invariants ----------------------------------------------------------------------------------

    @invariant()
    def nothing_lost(self) -> None:
        kept = set(self.server.handles.get(self.server.latest, ())) if self.server.latest else set()
        kept |= {self.seq_ids[s] for s in self.buffer.seqs()}
        missing = set(self.sent_ids) - kept - self.dropped_ids - self.lost_with_notice
        if self.session.state in TERMINAL:
            return  # on close or failure, what was never confirmed is counted in a notice
        assert not missing, f"lost without a notice: {sorted(missing)}"

    @invariant()
    def every_message_confirmed_or_handed_back_never_both_never_neither(self) -> None:
        everything = set(self.seq_ids)
        returned = set(self.returned)
        assert len(returned) == len(self.returned), "a message was handed back twice"
        assert not (returned & self.confirmed), "a message was both confirmed and handed back"
        waiting = set(self.buffer.seqs())
        assert waiting == set(self.session.unconfirmed_seqs)
        assert not (waiting & (returned | self.confirmed))
        if self.session.state in TERMINAL:
            assert not waiting
        assert everything == returned | self.confirmed | waiting, (
            "a message was neither confirmed nor handed back"
        )

    @invariant()
    def nothing_duplicated(self) -> None:
        if self.transparent and self.server.live:
            conversation = self.server.conversation()
            assert len(conversation) == len(set(conversation)), "the server saw a message twice"

    @invariant()
    def terminal_states_absorb(self) -> None:
        if self.was_terminal is not None:
            assert self.session.state is self.was_terminal
        elif self.session.state in TERMINAL:
            self.was_terminal = self.session.state

    @invariant()
    def go_away_deadline_honoured(self) -> None:
        if self.session.state is S.GOING_AWAY:
            assert self.go_away_limit is not None
            assert self.session.deadlines()[Timer.GO_AWAY] <= self.go_away_limit
        else:
            self.go_away_limit = None

    @invariant()
    def snapshots_round_trip_through_json(self) -> None:
        snapshot = self.session.snapshot()
        assert snapshots.snapshot_from_json(snapshots.snapshot_to_json(snapshot)) == snapshot

    def teardown(self) -> None:
        shown = repr(self.session) + "".join(repr(c) for c in self.log)
        for handle in self.server.handles:
            assert f"'{handle}'" not in shown, "a handle showed in a repr"
        again: list[Any] = []
        rebuilt = Session(self.config)
        for event in self.recorded:
            again.extend(rebuilt.handle(event))
        assert again == self.log
        assert rebuilt.snapshot() == self.session.snapshot()


class HandleOnlyLifecycle(Lifecycle):
    transparent = False


TestTransparent = Lifecycle.TestCase
TestHandleOnly = HandleOnlyLifecycle.TestCase
