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

from livestate import calls, window, wire
from livestate.calls import PendingCall
from livestate.commands import (
    BufferMessage,
    CancelTimer,
    CloseConnection,
    Command,
    DropBuffered,
    MessagesDropped,
    MessagesUnconfirmed,
    OpenConnection,
    ReconnectWithHandle,
    ReplayBuffered,
    Resumed,
    SendMessage,
    SessionFailed,
    StartTimer,
    StateChanged,
    ToolCallsOrphaned,
    TrimSeqs,
    TrimToIndex,
    TurnAborted,
)
from livestate.errors import BufferFull, ProtocolError, RecordingError, UsageError
from livestate.events import (
    CloseRequested,
    Connect,
    ConnectionClosed,
    ConnectionOpened,
    DiscardRequested,
    Event,
    MessageReceived,
    SendRequested,
    Timer,
    TimerFired,
    TransportFailed,
)
from livestate.machine import LIVE, TERMINAL, SessionState, fire
from livestate.policy import CloseAction, SessionConfig, backoff_delay, classify_close
from livestate.window import Unconsumed

__all__ = ["PendingCall", "Session", "SessionSnapshot", "Unconsumed"]

logger = logging.getLogger(__name__)

Recorder = Callable[[Event], None]
S = SessionState


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
    #: Whether the current connection proved progress (a handle, consumed input or server content).
    progressed: bool = False
    #: Whether a fresh session holds the unconsumed input until the application's re-seed.
    holding: bool = False
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
    #: Ids of calls a resume orphaned (the latest ``max_pending_calls``): a late answer to one is handed back.
    orphaned_ids: tuple[str, ...] = ()
    timers: tuple[tuple[Timer, float], ...]


class Session:
    """A Gemini Live session's lifecycle, as a pure state machine.

    Feed it events (:meth:`handle`, or the shortcuts :meth:`receive` and :meth:`send`); carry out every
    returned command, in order. Without a ``recorder`` it keeps nothing but its state; with one, every event it
    accepts is handed to the recorder once applied, and a recorder that raises undoes the event
    (:class:`RecordingError`), so a journal never misses an event the session acted on.
    """

    __slots__ = (
        "_debug",
        "_handle",
        "_live",
        "_outbox",
        "attempt_open",
        "buffered_bytes",
        "config",
        "connection",
        "connection_ended_at",
        "established",
        "first_unconsumed_index",
        "handle_generation",
        "holding",
        "last_at",
        "orphaned_ids",
        "outage_attempts",
        "pending_calls",
        "progressed",
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
        if not isinstance(config, SessionConfig):
            raise UsageError(f"Session needs a SessionConfig, got {config!r}")
        self.config = config
        self.recorder = recorder
        self.state = S.IDLE
        # Whether the state is live, kept beside it: enum hashing made ``state in LIVE`` the content fast
        # path's largest cost.
        self._live = False
        #: The ``at`` of the last event handled (snapshots carry it, so a restore can move the clock).
        self.last_at = 0.0
        self.connection = 0
        self.attempt_open = False
        self.resuming = False
        self.established = False
        self.progressed = False
        self.holding = False
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
        # In wire order: first the messages sent on this connection (wire indexes first_unconsumed_index,
        # first_unconsumed_index + 1, ...), then those waiting to go out.
        self.unconsumed: list[Unconsumed] = []
        self.buffered_bytes = 0
        #: Pending calls by id (id-less calls, which Vertex sometimes sends, by ``(name, n)``): O(1) answers.
        self.pending_calls: dict[object, PendingCall] = {}
        self.orphaned_ids: dict[str, None] = {}
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

    @property
    def unconfirmed_seqs(self) -> tuple[int, ...]:
        """The seqs of every client message not yet confirmed, in the order they go (or went) on the wire."""
        return tuple(u.seq for u in self.unconsumed)

    def has_room_for(self, message: wire.ClientMessage) -> bool:
        """Whether the replay buffer can take ``message`` now (``send`` raises ``BufferFull`` otherwise)."""
        if self.config.drop_oldest_when_full:
            return True
        size = window.approximate_size(message)
        return (
            len(self.unconsumed) < self.config.max_buffer_messages
            and self.buffered_bytes + size <= self.config.max_buffer_bytes
        )

    def handle(self, event: Event) -> tuple[Command, ...]:
        """Apply one event; return the commands to carry out, in order.

        Raises ``ProtocolError`` (impossible server behaviour), ``UsageError`` (an event the state does not
        allow), ``BufferFull`` (no room for a message) or ``RecordingError`` (the recorder failed); in every
        case the session is exactly as it was and nothing is recorded.
        """
        handler = _HANDLERS.get(type(event))
        if handler is None:
            raise UsageError(f"not an event: {event!r}")
        recorder = self.recorder
        before = self._capture() if recorder is not None else None
        try:
            handler(self, event)
        except BaseException:
            self._outbox = []
            raise
        last_at, self.last_at = self.last_at, event.at
        out, self._outbox = self._outbox, []
        if recorder is not None:
            try:
                recorder(event)
            except Exception as exc:
                assert before is not None
                self._release(before)
                self.last_at = last_at
                raise RecordingError(f"the recorder failed, the event was not applied: {exc!r}") from exc
        return tuple(out)

    def receive(self, data: bytes | str, *, at: float, connection: int | None = None) -> tuple[Command, ...]:
        """Decode one server frame and handle it. ``ProtocolError`` for a bad frame, session unchanged."""
        message = wire.decode(data, max_size=self.config.max_frame_bytes)
        return self.handle(MessageReceived(at=at, message=message, connection=connection))

    def send(self, message: wire.ClientMessage, *, at: float) -> tuple[Command, ...]:
        """Ask for ``message`` to be delivered: the same as ``handle(SendRequested(...))``."""
        return self.handle(SendRequested(at=at, message=message))

    def resume(self, at: float) -> tuple[Command, ...]:
        """Carry on a restored session (``Session.restore``) in this process: the commands that re-arm its
        timers and, when the process that saved it held a connection (live, or being opened), what reporting
        that connection as lost brings: a resume with the handle and the replay of what was not confirmed."""
        out: list[Command] = [
            StartTimer(timer=timer, deadline=deadline)
            for timer, deadline in sorted(self.timers.items(), key=lambda item: item[0].value)
        ]
        if self.state in LIVE or self.attempt_open:
            lost = ConnectionClosed(
                at=at, code=1006, reason="the process that held it ended", connection=self.connection
            )
            out.extend(self.handle(lost))
        return tuple(out)

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
            progressed=self.progressed,
            holding=self.holding,
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
            pending_calls=tuple(self.pending_calls.values()),
            orphaned_ids=tuple(self.orphaned_ids),
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
            if field.name not in (
                "config",
                "handle",
                "unconsumed",
                "pending_calls",
                "orphaned_ids",
                "timers",
            ):
                setattr(session, field.name, getattr(snapshot, field.name))
        session._handle = snapshot.handle
        session.unconsumed = list(snapshot.unconsumed)
        session.pending_calls = {calls.call_key(call): call for call in snapshot.pending_calls}
        session.orphaned_ids = dict.fromkeys(snapshot.orphaned_ids)
        session.timers = dict(snapshot.timers)
        session._live = snapshot.state in LIVE
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

    def _capture(self) -> list[Any]:
        """Every field, with private copies of the containers handlers change in place (for an undo)."""
        values = [getattr(self, name) for name in _STATE_SLOTS]
        values[_UNCONSUMED] = list(self.unconsumed)
        values[_PENDING] = dict(self.pending_calls)
        values[_TIMERS] = dict(self.timers)
        values[_ORPHANED] = dict(self.orphaned_ids)
        return values

    def _release(self, captured: list[Any]) -> None:
        for name, value in zip(_STATE_SLOTS, captured, strict=True):
            setattr(self, name, value)

    # --- event handlers (validate first, then change) --------------------------------------------

    def _on_connect(self, event: Connect) -> None:
        self._fire("connect", event)

    def _on_connection_opened(self, event: ConnectionOpened) -> None:
        if self.state is S.IDLE:
            raise UsageError("ConnectionOpened before Connect")

    def _on_message(self, event: MessageReceived) -> None:
        message = event.message
        if (
            self._live
            and type(message) is wire.ServerContent
            and (event.connection is None or event.connection == self.connection)
        ):  # the fast path: most frames are content on the live connection
            self._on_server_content(message)
            if self.state is S.GOING_AWAY:
                self._try_drain(event)
            return
        state = self.state
        if state is S.IDLE:
            raise UsageError("MessageReceived before Connect")
        if state in TERMINAL:
            return  # a late frame after the end: not a client message, nothing to hand back
        if self._superseded(event.connection) or (state is S.RECONNECTING and not self.attempt_open):
            return  # from a connection the session already left
        kind = type(message)
        if state not in LIVE:
            if kind is wire.SetupComplete:
                self._fire("setup_complete", event)
                return
            if kind is wire.ServerError:
                self._fire("setup_refused", event)
                return
            if kind in _PASSIVE:
                return
            raise ProtocolError(f"{_KIND_NAMES[kind]} before setupComplete")
        if kind is wire.ServerContent:
            self._on_server_content(event.message)  # type: ignore[arg-type]
        elif kind is wire.SessionResumptionUpdate:
            self._on_resumption_update(event, message)  # type: ignore[arg-type]
        elif kind is wire.ToolCall:
            self._on_tool_call(message)  # type: ignore[arg-type]
        elif kind is wire.ToolCallCancellation:
            calls.cancel_calls(self.pending_calls, message.ids or ())  # type: ignore[union-attr]
        elif kind is wire.GoAway:
            deadline = self._go_away_deadline(event.at, message.time_left)  # type: ignore[union-attr]
            self._fire("go_away", event, deadline=deadline)
            if deadline <= event.at:  # no time left (or none given): leave now, safe point or not
                self._fire("deadline", event)
        elif kind is wire.SetupComplete:
            raise ProtocolError("setupComplete: a second one on a live connection")
        else:
            return  # passive kinds (usage, voice activity, unknown, in-band errors) change nothing
        self._try_drain(event)

    def _on_server_content(self, content: wire.ServerContent) -> None:
        # The fast path: no transitions, just the turn flag (and the first sign of progress).
        if not self.progressed:
            self._progress()
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
                if index > self.seen_index:
                    self._progress()
                self.seen_index = index
            self._fire("not_resumable", event)

    def _on_tool_call(self, call: wire.ToolCall) -> None:
        calls.add_calls(
            self.pending_calls,
            call.function_calls or (),
            self.handle_generation,
            self.config.max_pending_calls,
        )
        self._progress()
        self.turn_open = True

    def _on_send(self, event: SendRequested) -> None:
        message = event.message
        state = self.state
        if state is S.IDLE:
            raise UsageError("send before Connect")
        if state in TERMINAL:
            raise UsageError(f"send while {state.name}")
        kind = type(message)
        if kind is wire.Setup:
            raise UsageError("setup is sent by the session itself (SessionConfig.setup)")
        if kind not in _CLIENT_KINDS:
            raise UsageError(f"not a client message: {message!r}")
        size = window.checked_size(message)
        config = self.config
        if size > config.max_buffer_bytes:
            raise UsageError(
                f"a {size}-byte message can never fit the replay buffer "
                f"(SessionConfig.max_buffer_bytes={config.max_buffer_bytes})"
            )
        full = (
            len(self.unconsumed) >= config.max_buffer_messages
            or self.buffered_bytes + size > config.max_buffer_bytes
        )
        if full and not config.drop_oldest_when_full:
            raise BufferFull(
                f"the replay buffer is full ({len(self.unconsumed)} messages, {self.buffered_bytes} bytes; "
                f"limits {config.max_buffer_messages} and {config.max_buffer_bytes}): wait for the server to "
                f"confirm what was sent"
            )
        if full:
            self._evict_for(size)
        self.seq += 1
        seq = self.seq
        generation: int | None = None
        call_ids: tuple[str, ...] = ()
        if kind is wire.ToolResponse:
            if calls.answers_only_orphans(self.pending_calls, self.orphaned_ids, message):  # type: ignore[arg-type]
                # The resumed session never issued these calls: sending the answer would confuse it.
                self.buffered_bytes += size
                self.unconsumed.append(Unconsumed(seq, None, size))
                self._emit(BufferMessage(seq=seq, message=message))
                self._hand_back(
                    [self.unconsumed[-1]],
                    "toolResponse to a call the resumed session never issued",
                    unsent=True,
                )
                return
            self.tool_response_since_handle = True
            generation, call_ids = calls.answer_calls(self.pending_calls, message)  # type: ignore[arg-type]
        reseed_done = False
        if state in LIVE and (not self.holding or kind is wire.ClientContent):
            # Out now. While a fresh session holds the old input, only the re-seed (clientContent) goes
            # ahead of it; it is placed before the held messages, in wire order.
            self.sent_index += 1
            entry = Unconsumed(seq, event.at, size, generation, call_ids, True)
            position = window.sent_count(self.unconsumed)
            if position == 0:
                self.first_unconsumed_index = self.sent_index
            if position == len(self.unconsumed):
                self.unconsumed.append(entry)
            else:
                self.unconsumed.insert(position, entry)
            self._emit(SendMessage(message=message, seq=seq))
            reseed_done = self.holding and bool(message.turn_complete)  # type: ignore[union-attr]
        else:
            self.unconsumed.append(Unconsumed(seq, None, size, generation, call_ids))
        self.buffered_bytes += size
        self._emit(BufferMessage(seq=seq, message=message))
        if reseed_done:
            self._release_held(event.at)
        self._try_drain(event)

    def _on_connection_closed(self, event: ConnectionClosed) -> None:
        state = self.state
        if state is S.IDLE:
            raise UsageError("ConnectionClosed before Connect")
        if state in TERMINAL or self._superseded(event.connection):
            return
        if state is S.RECONNECTING and not self.attempt_open:
            return  # the late close of a connection the session already gave up
        self._fire("connection_lost", event)

    def _on_transport_failed(self, event: TransportFailed) -> None:
        state = self.state
        if state is S.IDLE:
            raise UsageError("TransportFailed before Connect")
        if state in TERMINAL or self._superseded(event.connection):
            return
        self._fire("transport_failed", event)

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
        elif timer is Timer.RESEED and self.holding:
            self._release_held(event.at)
            self._try_drain(event)

    def _on_close_requested(self, event: CloseRequested) -> None:
        if self.state in TERMINAL:
            return
        self._fire("close", event)

    def _on_discard_requested(self, event: DiscardRequested) -> None:
        if self.state is S.IDLE:
            raise UsageError("DiscardRequested before Connect")
        if not self.holding:
            return  # nothing is held (any more): nothing to discard
        held = self.unconsumed[window.sent_count(self.unconsumed) :]
        self.holding = False
        self._cancel_timers(Timer.RESEED)
        self._hand_back(
            held, "discarded by the application instead of replaying it into the fresh session", unsent=True
        )
        self._try_drain(event)

    # --- transitions plumbing -------------------------------------------------------------------

    def _fire(self, trigger: str, event: Event, **details: Any) -> None:
        before = self.state
        mark = len(self._outbox)
        fire(self, trigger, event=event, **details)
        self._live = self.state in LIVE
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
            and not self.holding
        )

    def _progress(self) -> None:
        """This connection did useful work: the outage is over, and its attempt is not counted."""
        if not self.progressed and not self.attempt_open:
            self.progressed = True
            self.outage_attempts = 0
            if self.session_attempts > 0:
                self.session_attempts -= 1

    # --- conditions named in the table ----------------------------------------------------------
    # (``attempt_open`` is a field: transitions reads a non-callable attribute as the condition's value.)

    def at_safe_point(self, data: EventData) -> bool:
        """Condition: the turn is over, no call is pending, and a handle newer than any toolResponse is held."""
        return self._safe()

    def may_retry(self, data: EventData) -> bool:
        """Condition: this close (setup timeout, refused setup) is worth another attempt, and the budgets
        allow one."""
        return self._failure_reason(data.kwargs["event"]) is None

    def _close_action(self, event: Event) -> CloseAction:
        if isinstance(event, ConnectionClosed):
            return classify_close(self.config.close_rules, event.code, event.reason)
        if isinstance(event, MessageReceived):  # an error frame in answer to setup: the setup was refused
            return CloseAction.REJECTED
        return CloseAction.RETRY

    def _failure_reason(self, event: Event) -> str | None:
        if isinstance(event, TransportFailed):
            return event.reason
        action = self._close_action(event)
        if isinstance(event, ConnectionClosed):
            what = f"close {event.code} {event.reason!r}"
        elif isinstance(event, MessageReceived):
            what = f"setup refused: {_describe_error(event.message)}"
        else:
            what = "setup timeout"
        if action is CloseAction.FATAL:
            return f"{what} is fatal"
        if action is CloseAction.REJECTED and not (self.attempt_open and self.resuming):
            return f"{what}: the server rejected the session"
        if self.outage_attempts >= self.config.max_attempts_per_outage:
            return f"{what}: {self.outage_attempts} attempts without progress in this outage, the budget is spent"
        if self.session_attempts >= self.config.max_attempts_per_session:
            return f"{what}: {self.session_attempts} attempts without progress in this session, the budget is spent"
        return None

    # --- transition callbacks (named in the table; they only change fields and emit) -------------

    def start(self, data: EventData) -> None:
        """``connect``: open the first connection."""
        self._open(data.kwargs["event"].at)

    def on_setup_complete(self, data: EventData) -> None:
        """``setup_complete``: go live, replay the unconsumed buffer (or hold it for the application's re-seed
        of a fresh session), say whether state was restored."""
        at = data.kwargs["event"].at
        self._cancel_timers(Timer.SETUP)
        self._start_timer(Timer.HEALTHY, at + self.config.healthy_after)
        was_reconnect, restored = self.established, self.resuming
        self.attempt_open = False
        self.established = True
        self.resumable_now = False
        self.seen_index = 0
        self.sent_index = self.config.first_client_index - 1
        held = 0
        if was_reconnect and not restored:
            self.tool_response_since_handle = False
            if self.unconsumed and not self.config.replay_after_fresh_session:
                self._hand_back(
                    list(self.unconsumed),
                    "fresh session: unconsumed input not replayed (replay_after_fresh_session=False)",
                    unsent=True,
                )
            elif self.unconsumed and self.config.holds_for_reseed:
                self.holding = True
                held = len(self.unconsumed)
                self._start_timer(Timer.RESEED, at + self.config.reseed_timeout)
        replayed = 0 if self.holding else self._transmit_unsent(at)
        if was_reconnect:
            self._emit(Resumed(state_restored=restored, replayed=replayed, held=held))

    def on_handle_update(self, data: EventData) -> None:
        """``handle_update``: store the handle; trim what it covers."""
        event = data.kwargs["event"]
        update: wire.SessionResumptionUpdate = event.message
        self._progress()
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
        """``connection_lost`` / ``setup_timeout`` / ``setup_refused`` within budget: back off, then resume
        or start fresh."""
        event = data.kwargs["event"]
        at = event.at
        if self.attempt_open:
            self.attempt_open = False
            self._cancel_timers(Timer.SETUP)
            self._close_unanswered(event)
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
        """``connection_lost`` / ``setup_timeout`` / ``setup_refused`` / ``transport_failed`` without retry:
        stop, hand back every unconfirmed message, and say why."""
        event = data.kwargs["event"]
        reason = self._failure_reason(event) or "no retry"
        self._close_unanswered(event)
        if isinstance(event, TransportFailed) and self.connection:
            self._emit(CloseConnection(code=1011, reason="livestate: the transport failed"))
        seqs = self.unconfirmed_seqs
        self._wind_down("the session failed")
        self._emit(SessionFailed(reason=reason, seqs=seqs))

    def on_close(self, data: EventData) -> None:
        """``close``: close the connection if one is open; hand back what was never confirmed."""
        if self.connection and (self.attempt_open or self._live_before_close(data)):
            self._emit(CloseConnection(code=1000, reason="livestate: closed by the application"))
        self._wind_down("the session closed")

    # --- helpers for the callbacks ---------------------------------------------------------------

    def _live_before_close(self, data: EventData) -> bool:
        return data.transition is not None and data.transition.source in _LIVE_NAMES

    def _close_unanswered(self, event: Event) -> None:
        """An attempt that ends without a close from the server (a timeout, a refusal) is closed by us."""
        if isinstance(event, TimerFired):
            self._emit(CloseConnection(code=1000, reason="livestate: no setupComplete in time"))
        elif isinstance(event, MessageReceived):
            self._emit(CloseConnection(code=1000, reason="livestate: the server refused the setup"))

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
        self.progressed = False
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
        self.holding = False
        self._cancel_timers(Timer.GO_AWAY, Timer.HEALTHY, Timer.RESEED)
        if self.turn_open:
            self.turn_open = False
            self._emit(TurnAborted())
        for i, u in enumerate(self.unconsumed):
            if u.sent_at is not None:
                self.unconsumed[i] = attrs.evolve(u, sent_at=None)

    def _transmit_unsent(self, at: float) -> int:
        """Send every unconsumed message that has not gone out on this connection, in wire order."""
        start = window.sent_count(self.unconsumed)
        if start == len(self.unconsumed):
            return 0
        if start == 0:
            self.first_unconsumed_index = self.sent_index + 1
        sent = window.mark_sent(self.unconsumed, start, at)
        self.sent_index += len(sent)
        for first, last in window.replay_runs(self.unconsumed, sent):
            self._emit(ReplayBuffered(first_seq=first, last_seq=last))
        return len(sent)

    def _release_held(self, at: float) -> None:
        """The re-seed is done (or its time is up): the held input goes out after it."""
        self.holding = False
        self._cancel_timers(Timer.RESEED)
        self._transmit_unsent(at)

    def _orphan_calls(self, resuming: bool) -> None:
        """Calls that came after the handle in use are unknown to the resumed session: report them, and
        hand back buffered answers to them."""
        cutoff = self.handle_generation if resuming else -1
        self.pending_calls, orphaned = calls.split_orphans(self.pending_calls, cutoff)
        dropped = [
            u for u in self.unconsumed if u.calls_generation is not None and u.calls_generation >= cutoff
        ]
        ids = [c.id for c in orphaned if c.id is not None] + [i for u in dropped for i in u.call_ids]
        if orphaned or dropped:
            self._emit(ToolCallsOrphaned(ids=tuple(ids)))
            calls.remember_orphans(self.orphaned_ids, ids, self.config.max_pending_calls)
        if dropped:
            self._hand_back(dropped, "toolResponse to a call the resumed session never issued", unsent=True)

    def _trim(self, consumed: Callable[[int, Unconsumed], bool]) -> None:
        trimmed = window.trim(self.unconsumed, self.first_unconsumed_index, consumed)
        if not trimmed:
            return
        self.buffered_bytes -= sum(u.size for u in trimmed)
        self.first_unconsumed_index += len(trimmed)
        last = max(u.seq for u in trimmed)
        if not self.unconsumed or last < min(u.seq for u in self.unconsumed):
            self._emit(TrimToIndex(seq=last))
        else:  # a re-seed went out ahead of older held input: not a prefix of the seqs
            self._emit(TrimSeqs(seqs=tuple(u.seq for u in trimmed)))

    def _evict_for(self, size: int) -> None:
        """``drop_oldest_when_full``: make room for a ``size``-byte message by handing back the oldest."""
        config = self.config
        count = window.evict_count(
            self.unconsumed, self.buffered_bytes, size, config.max_buffer_messages, config.max_buffer_bytes
        )
        self.first_unconsumed_index += min(count, window.sent_count(self.unconsumed))
        self._hand_back(
            self.unconsumed[:count], "replay buffer full: the oldest were evicted (drop_oldest_when_full)"
        )

    def _hand_back(self, entries: list[Unconsumed], reason: str, *, unsent: bool = False) -> None:
        """Forget ``entries`` and hand them back: those that ever went out as unconfirmed, the others as
        dropped (all of them with ``unsent``: whatever went out cannot be in the conversation that goes on)."""
        if not entries:
            return
        gone = {u.seq for u in entries}
        self.unconsumed = [u for u in self.unconsumed if u.seq not in gone]
        self.buffered_bytes -= sum(u.size for u in entries)
        self._emit(DropBuffered(seqs=tuple(u.seq for u in entries)))
        unconfirmed = () if unsent else tuple(u.seq for u in entries if u.transmitted)
        dropped = tuple(u.seq for u in entries if unsent or not u.transmitted)
        if unconfirmed:
            self._emit(MessagesUnconfirmed(count=len(unconfirmed), reason=reason, seqs=unconfirmed))
        if dropped:
            self._emit(MessagesDropped(count=len(dropped), reason=reason, seqs=dropped))

    def _wind_down(self, reason: str) -> None:
        self._cancel_timers(*sorted(self.timers, key=lambda t: t.value))
        self.attempt_open = False
        self.holding = False
        if self.turn_open:
            self.turn_open = False
            self._emit(TurnAborted())
        if self.pending_calls:
            ids = tuple(c.id for c in self.pending_calls.values() if c.id is not None)
            self._emit(ToolCallsOrphaned(ids=ids))
            self.pending_calls = {}
        self._hand_back(list(self.unconsumed), f"{reason} before the server confirmed them")
        self.buffered_bytes = 0


def _describe_error(message: wire.ServerMessage) -> str:
    """The server's own words from an in-band error frame: code, status, message."""
    if not isinstance(message, wire.ServerError):  # pragma: no cover - only error frames refuse a setup
        return "an unexpected frame"
    parts = [str(part) for part in (message.code, message.status, message.message) if part not in (None, "")]
    return " ".join(parts) or "an error frame with no details"


_HANDLERS: dict[type, Callable[[Session, Any], None]] = {
    Connect: Session._on_connect,
    ConnectionOpened: Session._on_connection_opened,
    MessageReceived: Session._on_message,
    SendRequested: Session._on_send,
    ConnectionClosed: Session._on_connection_closed,
    TimerFired: Session._on_timer,
    CloseRequested: Session._on_close_requested,
    DiscardRequested: Session._on_discard_requested,
    TransportFailed: Session._on_transport_failed,
}
_STATE_SLOTS = tuple(
    name for name in Session.__slots__ if name not in ("_debug", "_outbox", "config", "recorder")
)
_UNCONSUMED = _STATE_SLOTS.index("unconsumed")
_PENDING = _STATE_SLOTS.index("pending_calls")
_TIMERS = _STATE_SLOTS.index("timers")
_ORPHANED = _STATE_SLOTS.index("orphaned_ids")
_CLIENT_KINDS = frozenset({wire.ClientContent, wire.RealtimeInput, wire.ToolResponse})
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
