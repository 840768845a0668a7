"""The public pure core: ``Session`` turns events into commands.

A session owns counters, the last good handle, the map from per-connection wire indexes to its own ``seq``
numbers, the timers it asked for, and the tool calls in flight. It holds no payloads: the transport keeps
buffered messages (``ReplayBuffer``) as the commands say. Lifecycle events go through the one transitions
machine built from :mod:`livestate.machine`'s table; content takes a fast path that only sets flags.

Validation happens before any change: a call that raises leaves the session exactly as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import attrs
from transitions import EventData

from livestate import wire
from livestate.commands import (
    BufferMessage,
    CancelTimer,
    CloseConnection,
    Command,
    DropBuffered,
    MessagesDropped,
    OpenConnection,
    ReconnectWithHandle,
    ReplayBuffered,
    Resumed,
    SendMessage,
    SessionFailed,
    StartTimer,
    StateChanged,
    ToolCallsOrphaned,
    TrimToIndex,
    TurnAborted,
)
from livestate.errors import ProtocolError, UsageError
from livestate.events import (
    CloseRequested,
    Connect,
    ConnectionClosed,
    ConnectionOpened,
    Event,
    MessageReceived,
    SendRequested,
    Timer,
    TimerFired,
)
from livestate.machine import LIVE, TERMINAL, SessionState, fire
from livestate.policy import CloseAction, SessionConfig, backoff_delay, classify_close

__all__ = ["PendingCall", "Session", "SessionSnapshot", "Unconsumed"]

logger = logging.getLogger(__name__)

Recorder = Callable[[Event], None]
S = SessionState


@attrs.frozen
class Unconsumed:
    """A client message the server has not confirmed: buffered by the transport under ``seq``."""

    seq: int
    #: When it went out on the current connection (``None``: not sent yet, waiting for a connection).
    sent_at: float | None
    #: Approximate size in bytes, for the buffer limit.
    size: int
    #: For a toolResponse: the handle generation of the oldest call it answers (``None`` otherwise).
    calls_generation: int | None = None
    call_ids: tuple[str, ...] = ()


@attrs.frozen
class PendingCall:
    """A function call the model issued and the application has not answered."""

    id: str | None
    name: str | None
    #: How many handles had been stored when the call arrived: a resume from an older handle orphans it.
    generation: int


@attrs.frozen(kw_only=True)
class SessionSnapshot:
    """Everything a session is, frozen: ``Session.restore(snapshot)`` rebuilds it (in another process too).

    It carries the handle, a secret: keep snapshots where you keep credentials.
    """

    config: SessionConfig
    state: SessionState
    #: The ``at`` of the last event before the snapshot.
    last_at: float
    connection: int
    attempt_open: bool
    resuming: bool
    established: bool
    outage_attempts: int
    session_attempts: int
    handle: str | None = attrs.field(repr=False)
    handle_generation: int
    connection_ended_at: float | None
    tool_response_since_handle: bool
    resumable_now: bool
    turn_open: bool
    seq: int
    seen_index: int
    sent_index: int
    first_unconsumed_index: int
    unconsumed: tuple[Unconsumed, ...]
    buffered_bytes: int
    pending_calls: tuple[PendingCall, ...]
    timers: tuple[tuple[Timer, float], ...]


class Session:
    """A Gemini Live session's lifecycle, as a pure state machine.

    Feed it events (:meth:`handle`, or the shortcuts :meth:`receive` and :meth:`send`); carry out every
    returned command, in order. Without a ``recorder`` it keeps nothing but its state; with one, every event it
    accepts is handed to the recorder after it has been applied.
    """

    __slots__ = (
        "_debug",
        "_handle",
        "_outbox",
        "attempt_open",
        "buffered_bytes",
        "config",
        "connection",
        "connection_ended_at",
        "established",
        "first_unconsumed_index",
        "handle_generation",
        "last_at",
        "outage_attempts",
        "pending_calls",
        "recorder",
        "resumable_now",
        "resuming",
        "seen_index",
        "sent_index",
        "seq",
        "session_attempts",
        "state",
        "timers",
        "tool_response_since_handle",
        "turn_open",
        "unconsumed",
    )

    def __init__(self, config: SessionConfig, *, recorder: Recorder | None = None) -> None:
        self.config = config
        self.recorder = recorder
        self.state = S.IDLE
        #: The ``at`` of the last event handled (snapshots carry it, so a restore can move the clock).
        self.last_at = 0.0
        self.connection = 0
        self.attempt_open = False
        self.resuming = False
        self.established = False
        self.outage_attempts = 0
        self.session_attempts = 0
        self._handle: str | None = None
        self.handle_generation = 0
        self.connection_ended_at: float | None = None
        self.tool_response_since_handle = False
        self.resumable_now = False
        self.turn_open = False
        self.seq = 0
        self.seen_index = 0
        self.sent_index = 0
        self.first_unconsumed_index = 0
        # A list, not a deque: an empty deque costs 600 bytes per idle session; trims are rare and short.
        self.unconsumed: list[Unconsumed] = []
        self.buffered_bytes = 0
        self.pending_calls: list[PendingCall] = []
        self.timers: dict[Timer, float] = {}
        self._outbox: list[Command] = []
        # Decided once per session (as websockets does), so a disabled log costs nothing per transition.
        self._debug = logger.isEnabledFor(logging.DEBUG)

    def __repr__(self) -> str:
        return (
            f"<Session {self.state.name} connection={self.connection} seq={self.seq} "
            f"unconsumed={len(self.unconsumed)} handle={'yes' if self._handle else 'no'}>"
        )

    # --- public API ------------------------------------------------------------------------------

    @property
    def has_handle(self) -> bool:
        """Whether a resumable handle is stored (the handle itself is never exposed by repr)."""
        return self._handle is not None

    def handle(self, event: Event) -> tuple[Command, ...]:
        """Apply one event; return the commands to carry out, in order.

        Raises ``ProtocolError`` (impossible server behaviour) or ``UsageError`` (an event the state does not
        allow); either way the session is unchanged and nothing is recorded.
        """
        handler = _HANDLERS.get(type(event))
        if handler is None:
            raise UsageError(f"not an event: {event!r}")
        handler(self, event)
        self.last_at = event.at
        out, self._outbox = self._outbox, []
        if self.recorder is not None:
            self.recorder(event)
        return tuple(out)

    def receive(self, data: bytes | str, *, at: float, connection: int | None = None) -> tuple[Command, ...]:
        """Decode one server frame and handle it. ``ProtocolError`` for a bad frame, session unchanged."""
        message = wire.decode(data, max_size=self.config.max_frame_bytes)
        return self.handle(MessageReceived(at=at, message=message, connection=connection))

    def send(self, message: wire.ClientMessage, *, at: float) -> tuple[Command, ...]:
        """Ask for ``message`` to be delivered: the same as ``handle(SendRequested(...))``."""
        return self.handle(SendRequested(at=at, message=message))

    def next_deadline(self) -> float | None:
        """The earliest armed timer's deadline, or ``None``."""
        return min(self.timers.values()) if self.timers else None

    @classmethod
    def replay(
        cls, config: SessionConfig, events: Iterable[Event], *, recorder: Recorder | None = None
    ) -> Session:
        """Rebuild a session by handling ``events`` in order (their commands are discarded)."""
        session = cls(config, recorder=recorder)
        for event in events:
            session.handle(event)
        return session

    def snapshot(self) -> SessionSnapshot:
        """Everything the session is, frozen. Take one on every handle update to survive a crash."""
        return SessionSnapshot(
            config=self.config,
            state=self.state,
            last_at=self.last_at,
            connection=self.connection,
            attempt_open=self.attempt_open,
            resuming=self.resuming,
            established=self.established,
            outage_attempts=self.outage_attempts,
            session_attempts=self.session_attempts,
            handle=self._handle,
            handle_generation=self.handle_generation,
            connection_ended_at=self.connection_ended_at,
            tool_response_since_handle=self.tool_response_since_handle,
            resumable_now=self.resumable_now,
            turn_open=self.turn_open,
            seq=self.seq,
            seen_index=self.seen_index,
            sent_index=self.sent_index,
            first_unconsumed_index=self.first_unconsumed_index,
            unconsumed=tuple(self.unconsumed),
            buffered_bytes=self.buffered_bytes,
            pending_calls=tuple(self.pending_calls),
            timers=tuple(sorted(self.timers.items(), key=lambda item: item[0].value)),
        )

    @classmethod
    def restore(
        cls,
        snapshot: SessionSnapshot,
        *,
        recorder: Recorder | None = None,
        at: float | None = None,
        elapsed: float = 0.0,
    ) -> Session:
        """A session in exactly the state ``snapshot`` captured.

        In another process the clock behind ``at`` starts elsewhere: pass ``at``, the new clock's current
        time, and ``elapsed``, the seconds since the snapshot was taken, and every stored time (timer
        deadlines, when the last connection ended, when buffered messages were sent) moves with it, so a
        handle's lifetime and the guard window keep counting from the right instant."""
        session = cls(snapshot.config, recorder=recorder)
        for field in attrs.fields(SessionSnapshot):
            if field.name not in ("config", "handle", "unconsumed", "pending_calls", "timers"):
                setattr(session, field.name, getattr(snapshot, field.name))
        session._handle = snapshot.handle
        session.unconsumed = list(snapshot.unconsumed)
        session.pending_calls = list(snapshot.pending_calls)
        session.timers = dict(snapshot.timers)
        if at is not None:
            session._shift_clock(at - (snapshot.last_at + elapsed))
        return session

    def _shift_clock(self, offset: float) -> None:
        self.last_at += offset
        if self.connection_ended_at is not None:
            self.connection_ended_at += offset
        self.timers = {timer: deadline + offset for timer, deadline in self.timers.items()}
        self.unconsumed = [
            u if u.sent_at is None else attrs.evolve(u, sent_at=u.sent_at + offset) for u in self.unconsumed
        ]

    # --- event handlers (validate first, then change) --------------------------------------------

    def _on_connect(self, event: Connect) -> None:
        self._fire("connect", event)

    def _on_connection_opened(self, event: ConnectionOpened) -> None:
        if self.state is S.IDLE:
            raise UsageError("ConnectionOpened before Connect")

    def _on_message(self, event: MessageReceived) -> None:
        message = event.message
        state = self.state
        if state is S.IDLE:
            raise UsageError("MessageReceived before Connect")
        if state in TERMINAL:
            self._emit(MessagesDropped(count=1, reason=f"received while {state.name}"))
            return
        if self._superseded(event.connection) or (state is S.RECONNECTING and not self.attempt_open):
            self._emit(MessagesDropped(count=1, reason="from a superseded connection"))
            return
        kind = type(message)
        if kind in _PASSIVE:
            return
        if state not in LIVE:
            if kind is wire.SetupComplete:
                self._fire("setup_complete", event)
                return
            raise ProtocolError(f"{_KIND_NAMES[kind]} before setupComplete")
        if kind is wire.ServerContent:
            self._on_server_content(event.message)  # type: ignore[arg-type]
        elif kind is wire.SessionResumptionUpdate:
            self._on_resumption_update(event, message)  # type: ignore[arg-type]
        elif kind is wire.ToolCall:
            self._on_tool_call(message)  # type: ignore[arg-type]
        elif kind is wire.ToolCallCancellation:
            self._on_tool_call_cancellation(message)  # type: ignore[arg-type]
        elif kind is wire.GoAway:
            deadline = self._go_away_deadline(event.at, message.time_left)  # type: ignore[union-attr]
            self._fire("go_away", event, deadline=deadline)
            if deadline <= event.at:  # no time left (or none given): leave now, safe point or not
                self._fire("deadline", event)
        elif kind is wire.SetupComplete:
            raise ProtocolError("setupComplete: a second one on a live connection")
        self._try_drain(event)

    def _on_server_content(self, content: wire.ServerContent) -> None:
        # The fast path: no transitions, just the turn flag.
        if content.model_turn is not None or content.output_transcription is not None:
            self.turn_open = True
        if content.interrupted or (content.turn_complete and content.interaction_status != "IN_PROGRESS"):
            self.turn_open = False

    def _on_resumption_update(self, event: MessageReceived, update: wire.SessionResumptionUpdate) -> None:
        index = update.last_consumed_client_message_index
        if self.config.transparent and index is not None:
            if index < self.seen_index:
                raise ProtocolError(
                    f"sessionResumptionUpdate.lastConsumedClientMessageIndex: went backwards "
                    f"from {self.seen_index} to {index}"
                )
            if index > self.sent_index:
                raise ProtocolError(
                    f"sessionResumptionUpdate.lastConsumedClientMessageIndex: {index} is past the last "
                    f"message sent on this connection ({self.sent_index})"
                )
        if update.resumable and update.new_handle:
            self._fire("handle_update", event)
        else:
            if index is not None and self.config.transparent:
                self.seen_index = index
            self._fire("not_resumable", event)

    def _on_tool_call(self, call: wire.ToolCall) -> None:
        self.turn_open = True
        for fc in call.function_calls or ():
            self.pending_calls.append(PendingCall(fc.id, fc.name, self.handle_generation))

    def _on_tool_call_cancellation(self, cancellation: wire.ToolCallCancellation) -> None:
        cancelled = set(cancellation.ids or ())
        self.pending_calls = [c for c in self.pending_calls if c.id not in cancelled]

    def _on_send(self, event: SendRequested) -> None:
        message = event.message
        state = self.state
        if state is S.IDLE:
            raise UsageError("send before Connect")
        if state in TERMINAL:
            raise UsageError(f"send while {state.name}")
        if type(message) is wire.Setup:
            raise UsageError("setup is sent by the session itself (SessionConfig.setup)")
        self.seq += 1
        seq = self.seq
        generation: int | None = None
        call_ids: tuple[str, ...] = ()
        if type(message) is wire.ToolResponse:
            generation, call_ids = self._answer_calls(message)
        live = state in LIVE
        if live:
            self.sent_index += 1
            if not self.unconsumed:
                self.first_unconsumed_index = self.sent_index
            self._emit(SendMessage(message=message, seq=seq))
        size = _approximate_size(message)
        self.unconsumed.append(Unconsumed(seq, event.at if live else None, size, generation, call_ids))
        self.buffered_bytes += size
        self._emit(BufferMessage(seq=seq, message=message))
        self._enforce_buffer_limits()
        self._try_drain(event)

    def _answer_calls(self, response: wire.ToolResponse) -> tuple[int | None, tuple[str, ...]]:
        self.tool_response_since_handle = True
        generation: int | None = None
        ids = []
        for fr in response.function_responses or ():
            for i, call in enumerate(self.pending_calls):
                if call.id == fr.id and (fr.id is not None or call.name == fr.name):
                    del self.pending_calls[i]
                    generation = call.generation if generation is None else min(generation, call.generation)
                    break
            if fr.id is not None:
                ids.append(fr.id)
        return generation, tuple(ids)

    def _on_connection_closed(self, event: ConnectionClosed) -> None:
        state = self.state
        if state is S.IDLE:
            raise UsageError("ConnectionClosed before Connect")
        if state in TERMINAL or self._superseded(event.connection):
            return
        if state is S.RECONNECTING and not self.attempt_open:
            return  # the late close of a connection the session already gave up
        self._fire("connection_lost", event)

    def _on_timer(self, event: TimerFired) -> None:
        if self.timers.pop(event.timer, None) is None:
            return  # stale: cancelled or replaced
        timer = event.timer
        if timer is Timer.HEALTHY:
            self.outage_attempts = 0
        elif timer is Timer.GO_AWAY and self.state is S.GOING_AWAY:
            self._fire("deadline", event)
        elif timer is Timer.SETUP and self.attempt_open:
            self._fire("setup_timeout", event)
        elif timer is Timer.BACKOFF and self.state is S.RECONNECTING:
            self._fire("backoff_elapsed", event)

    def _on_close_requested(self, event: CloseRequested) -> None:
        if self.state in TERMINAL:
            return
        self._fire("close", event)

    # --- transitions plumbing -------------------------------------------------------------------

    def _fire(self, trigger: str, event: Event, **details: Any) -> None:
        before = self.state
        mark = len(self._outbox)
        fire(self, trigger, event=event, **details)
        if self.state is not before:
            self._outbox.insert(mark, StateChanged(old=before, new=self.state))
            if self._debug:
                logger.debug("session %s -> %s on %s", before.name, self.state.name, trigger)

    def _try_drain(self, event: Event) -> None:
        if self.state is S.GOING_AWAY and self._safe():
            self._fire("drain", event)

    def _superseded(self, connection: int | None) -> bool:
        return connection is not None and connection != self.connection

    def _emit(self, command: Command) -> None:
        self._outbox.append(command)

    def _start_timer(self, timer: Timer, deadline: float) -> None:
        self.timers[timer] = deadline
        self._emit(StartTimer(timer=timer, deadline=deadline))

    def _cancel_timers(self, *timers: Timer) -> None:
        for timer in timers:
            if self.timers.pop(timer, None) is not None:
                self._emit(CancelTimer(timer=timer))

    def _safe(self) -> bool:
        return (
            not self.turn_open
            and not self.pending_calls
            and self._handle is not None
            and self.resumable_now
            and not self.tool_response_since_handle
        )

    # --- conditions named in the table ----------------------------------------------------------
    # (``attempt_open`` is a field: transitions reads a non-callable attribute as the condition's value.)

    def at_safe_point(self, data: EventData) -> bool:
        """Condition: the turn is over, no call is pending, and a handle newer than any toolResponse is held."""
        return self._safe()

    def may_retry(self, data: EventData) -> bool:
        """Condition: this close (or setup timeout) is worth another attempt, and the budgets allow one."""
        return self._failure_reason(data.kwargs["event"]) is None

    def _close_action(self, event: Event) -> CloseAction:
        if isinstance(event, ConnectionClosed):
            return classify_close(self.config.close_rules, event.code, event.reason)
        return CloseAction.RETRY

    def _failure_reason(self, event: Event) -> str | None:
        action = self._close_action(event)
        what = (
            f"close {event.code} {event.reason!r}" if isinstance(event, ConnectionClosed) else "setup timeout"
        )
        if action is CloseAction.FATAL:
            return f"{what} is fatal"
        if action is CloseAction.REJECTED and not (self.attempt_open and self.resuming):
            return f"{what}: the server rejected the session"
        if self.outage_attempts >= self.config.max_attempts_per_outage:
            return f"{what}: {self.outage_attempts} attempts in this outage, the budget is spent"
        if self.session_attempts >= self.config.max_attempts_per_session:
            return f"{what}: {self.session_attempts} attempts in this session, the budget is spent"
        return None

    # --- transition callbacks (named in the table; they only change fields and emit) -------------

    def start(self, data: EventData) -> None:
        """``connect``: open the first connection."""
        self._open(data.kwargs["event"].at)

    def on_setup_complete(self, data: EventData) -> None:
        """``setup_complete``: go live, replay the unconsumed buffer, say whether state was restored."""
        at = data.kwargs["event"].at
        self._cancel_timers(Timer.SETUP)
        self._start_timer(Timer.HEALTHY, at + self.config.healthy_after)
        was_reconnect, restored = self.established, self.resuming
        self.attempt_open = False
        self.established = True
        self.resumable_now = False
        self.seen_index = 0
        self.sent_index = self.config.first_client_index - 1
        if was_reconnect and not restored:
            self.tool_response_since_handle = False
            if self.unconsumed and not self.config.replay_after_fresh_session:
                self._drop_all("fresh session: unconsumed input not replayed (re-seed the history)")
        replayed = len(self.unconsumed)
        if replayed:
            self.first_unconsumed_index = self.sent_index + 1
            self.sent_index += replayed
            self.unconsumed = [attrs.evolve(u, sent_at=at) for u in self.unconsumed]
            self._emit(ReplayBuffered(first_seq=self.unconsumed[0].seq, last_seq=self.unconsumed[-1].seq))
        if was_reconnect:
            self._emit(Resumed(state_restored=restored, replayed=replayed))

    def on_handle_update(self, data: EventData) -> None:
        """``handle_update``: store the handle; trim what it covers."""
        event = data.kwargs["event"]
        update: wire.SessionResumptionUpdate = event.message
        self._handle = update.new_handle
        self.handle_generation += 1
        self.tool_response_since_handle = False
        self.resumable_now = True
        index = update.last_consumed_client_message_index
        if self.config.transparent:
            if index is not None:
                self.seen_index = index
                self._trim(lambda position, _: position <= index)
        else:
            horizon = event.at - self.config.guard_window
            self._trim(lambda _, u: u.sent_at is not None and u.sent_at < horizon)

    def on_not_resumable(self, data: EventData) -> None:
        """``not_resumable``: the last good handle stays; no trimming."""
        self.resumable_now = False

    def on_go_away(self, data: EventData) -> None:
        """``go_away``: arm the deadline timer, unless the deadline is now (then ``deadline`` follows at once)
        or an earlier goAway already set a sooner one."""
        deadline, at = data.kwargs["deadline"], data.kwargs["event"].at
        current = self.timers.get(Timer.GO_AWAY)
        if deadline > at and (current is None or deadline < current):
            self._start_timer(Timer.GO_AWAY, deadline)

    def _go_away_deadline(self, at: float, time_left: wire.Duration | None) -> float:
        """``at + timeLeft - goaway_margin``, never before ``at``; ``at`` itself when ``timeLeft`` is absent."""
        if time_left is None:
            return at
        return max(at, at + time_left.seconds - self.config.goaway_margin)

    def reconnect_planned(self, data: EventData) -> None:
        """``drain`` / ``deadline``: close this connection first, then resume on a new one."""
        at = data.kwargs["event"].at
        self._emit(CloseConnection(code=1000, reason="livestate: goAway, resuming on a new connection"))
        self._connection_ended(at)
        self._open(at)

    def recover(self, data: EventData) -> None:
        """``connection_lost`` / ``setup_timeout`` within budget: back off, then resume or start fresh."""
        event = data.kwargs["event"]
        at = event.at
        if self.attempt_open:
            self.attempt_open = False
            self._cancel_timers(Timer.SETUP)
            if isinstance(event, TimerFired):
                self._emit(CloseConnection(code=1000, reason="livestate: no setupComplete in time"))
            if self.resuming and self._close_action(event) is CloseAction.REJECTED:
                self._handle = None  # the server refused it: fall back to a fresh session
        else:
            self._connection_ended(at)
        delay = backoff_delay(self.config, self.outage_attempts + 1, self.session_attempts)
        if delay <= 0:
            self._open(at)
        else:
            self._start_timer(Timer.BACKOFF, at + delay)

    def open_attempt(self, data: EventData) -> None:
        """``backoff_elapsed``: open the next attempt."""
        self._open(data.kwargs["event"].at)

    def fail(self, data: EventData) -> None:
        """``connection_lost`` / ``setup_timeout`` without retry: stop, and say why."""
        event = data.kwargs["event"]
        reason = self._failure_reason(event) or "no retry"
        if isinstance(event, TimerFired):
            self._emit(CloseConnection(code=1000, reason="livestate: no setupComplete in time"))
        self._wind_down("session failed")
        self._emit(SessionFailed(reason=reason))

    def on_close(self, data: EventData) -> None:
        """``close``: close the connection if one is open; report what was never confirmed."""
        if self.connection and (self.attempt_open or self._live_before_close(data)):
            self._emit(CloseConnection(code=1000, reason="livestate: closed by the application"))
        self._wind_down("unconfirmed when the session closed")

    # --- helpers for the callbacks ---------------------------------------------------------------

    def _live_before_close(self, data: EventData) -> bool:
        return data.transition is not None and data.transition.source in _LIVE_NAMES

    def _open(self, at: float) -> None:
        handle = self._handle
        ended = self.connection_ended_at
        if handle is not None and ended is not None and at - ended > self.config.handle_ttl:
            handle = self._handle = None  # too old: the service would refuse it
        self._orphan_calls(handle is not None)
        self.outage_attempts += 1
        self.session_attempts += 1
        self.connection += 1
        self.attempt_open = True
        self.resuming = handle is not None
        setup = self.config.setup_for(handle, replacing=handle is None and self.established)
        if handle is None:
            command: Command = OpenConnection(
                setup=setup, attempt=self.outage_attempts, connection=self.connection
            )
        else:
            command = ReconnectWithHandle(
                handle=handle, setup=setup, attempt=self.outage_attempts, connection=self.connection
            )
        self._emit(command)
        self._start_timer(Timer.SETUP, at + self.config.setup_timeout)

    def _connection_ended(self, at: float) -> None:
        self.connection_ended_at = at
        self.resumable_now = False
        self._cancel_timers(Timer.GO_AWAY, Timer.HEALTHY)
        if self.turn_open:
            self.turn_open = False
            self._emit(TurnAborted())
        for i, u in enumerate(self.unconsumed):
            if u.sent_at is not None:
                self.unconsumed[i] = attrs.evolve(u, sent_at=None)

    def _orphan_calls(self, resuming: bool) -> None:
        """Calls that came after the handle in use are unknown to the resumed session: report them, and
        drop buffered answers to them."""
        cutoff = self.handle_generation if resuming else -1
        orphaned = [c for c in self.pending_calls if c.generation >= cutoff]
        if orphaned:
            self.pending_calls = [c for c in self.pending_calls if c.generation < cutoff]
        dropped = [
            u for u in self.unconsumed if u.calls_generation is not None and u.calls_generation >= cutoff
        ]
        ids = [c.id for c in orphaned if c.id is not None] + [i for u in dropped for i in u.call_ids]
        if orphaned or dropped:
            self._emit(ToolCallsOrphaned(ids=tuple(ids)))
        if dropped:
            gone = {u.seq for u in dropped}
            self.unconsumed = [u for u in self.unconsumed if u.seq not in gone]
            self.buffered_bytes -= sum(u.size for u in dropped)
            self._emit(DropBuffered(seqs=tuple(sorted(gone))))
            self._emit(
                MessagesDropped(
                    count=len(dropped), reason="toolResponse to a call the resumed session never issued"
                )
            )

    def _trim(self, consumed: Callable[[int, Unconsumed], bool]) -> None:
        unconsumed = self.unconsumed
        count = 0
        while count < len(unconsumed) and consumed(self.first_unconsumed_index + count, unconsumed[count]):
            self.buffered_bytes -= unconsumed[count].size
            count += 1
        if count:
            last = unconsumed[count - 1].seq
            del unconsumed[:count]
            self.first_unconsumed_index += count
            self._emit(TrimToIndex(seq=last))

    def _enforce_buffer_limits(self) -> None:
        limit_messages, limit_bytes = self.config.max_buffer_messages, self.config.max_buffer_bytes
        unconsumed = self.unconsumed
        count = 0
        while count < len(unconsumed) and (
            len(unconsumed) - count > limit_messages or self.buffered_bytes > limit_bytes
        ):
            self.buffered_bytes -= unconsumed[count].size
            count += 1
        dropped = [u.seq for u in unconsumed[:count]]
        del unconsumed[:count]
        self.first_unconsumed_index += count
        if dropped:
            self._emit(DropBuffered(seqs=tuple(dropped)))
            self._emit(
                MessagesDropped(count=len(dropped), reason="replay buffer limit reached (oldest first)")
            )

    def _drop_all(self, reason: str) -> None:
        if self.unconsumed:
            self._emit(DropBuffered(seqs=tuple(u.seq for u in self.unconsumed)))
            self._emit(MessagesDropped(count=len(self.unconsumed), reason=reason))
            self.unconsumed = []
            self.buffered_bytes = 0

    def _wind_down(self, reason: str) -> None:
        self._cancel_timers(*sorted(self.timers, key=lambda t: t.value))
        self.attempt_open = False
        if self.turn_open:
            self.turn_open = False
            self._emit(TurnAborted())
        if self.pending_calls:
            self._emit(ToolCallsOrphaned(ids=tuple(c.id for c in self.pending_calls if c.id is not None)))
            self.pending_calls = []
        self._drop_all(reason)


def _approximate_size(message: wire.ClientMessage) -> int:
    """Bytes a buffered message costs, estimated without encoding audio (the hot path)."""
    if type(message) is wire.RealtimeInput:
        size = 64
        for blob in (message.audio, message.video):
            if blob is not None and blob.data is not None:
                size += len(blob.data)
        for chunk in message.media_chunks or ():
            size += len(chunk.data or "")
        return size + len(message.text or "")
    return len(wire.encode(message))


_HANDLERS: dict[type, Callable[[Session, Any], None]] = {
    Connect: Session._on_connect,
    ConnectionOpened: Session._on_connection_opened,
    MessageReceived: Session._on_message,
    SendRequested: Session._on_send,
    ConnectionClosed: Session._on_connection_closed,
    TimerFired: Session._on_timer,
    CloseRequested: Session._on_close_requested,
}
_LIVE_NAMES = frozenset(state.name for state in LIVE)
_PASSIVE = frozenset(
    {
        wire.UsageReport,
        wire.VoiceActivity,
        wire.VoiceActivityDetectionSignal,
        wire.UnknownMessage,
        wire.ServerError,
    }
)
_KIND_NAMES = {
    wire.ServerContent: "serverContent",
    wire.ToolCall: "toolCall",
    wire.ToolCallCancellation: "toolCallCancellation",
    wire.GoAway: "goAway",
    wire.SessionResumptionUpdate: "sessionResumptionUpdate",
    wire.SetupComplete: "setupComplete",
}
