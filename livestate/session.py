"""The public pure core: ``Session`` turns events into commands.

A session is one record (:class:`~livestate.record.SessionRecord`: counters, the last good handle, the
replay window, the timers it asked for, the tool calls in flight), kept by an internal model that
:mod:`livestate.machine`'s table fires (:mod:`livestate.lifecycle`). ``Session`` routes each event: content on
the live connection takes a fast path that only sets flags; everything that may change the state goes
through the table. It holds no payloads: the transport keeps buffered messages (``ReplayBuffer``) as the
commands say.

Validation happens before any change: a call that raises leaves the session exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from livestate import window, wire
from livestate.calls import PendingCall
from livestate.commands import Command, StartTimer
from livestate.errors import ProtocolError, RecordingError, UsageError
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
from livestate.lifecycle import Lifecycle
from livestate.machine import SessionState
from livestate.policy import SessionConfig
from livestate.record import SessionRecord, SessionSnapshot
from livestate.window import Unconsumed

__all__ = ["PendingCall", "Session", "SessionSnapshot", "Unconsumed"]

Recorder = Callable[[Event], None]


class Session:
    """A Gemini Live session's lifecycle, as a pure state machine.

    Feed it events (:meth:`handle`, or the shortcuts :meth:`receive` and :meth:`send`); carry out every
    returned command, in order. Without a ``recorder`` it keeps nothing but its state; with one, every event it
    accepts is handed to the recorder once applied, and a recorder that raises undoes the event
    (:class:`RecordingError`), so a journal never misses an event the session acted on.
    """

    __slots__ = ("_core", "recorder")

    def __init__(self, config: SessionConfig, *, recorder: Recorder | None = None) -> None:
        if not isinstance(config, SessionConfig):
            raise UsageError(f"Session needs a SessionConfig, got {config!r}")
        self._core = Lifecycle(config, SessionRecord())
        #: Called with every event the session applied (``None``: nothing is kept).
        self.recorder = recorder

    def __repr__(self) -> str:
        rec = self._core.rec
        return (
            f"<Session {rec.state.name} connection={rec.connection} seq={rec.seq} "
            f"unconsumed={len(rec.unconsumed)} handle={'yes' if rec.handle else 'no'}>"
        )

    # --- what can be read --------------------------------------------------------------------------

    @property
    def config(self) -> SessionConfig:
        """The config the session runs under."""
        return self._core.config

    @property
    def state(self) -> SessionState:
        """Where the session is in its lifecycle."""
        return self._core.rec.state

    @property
    def has_handle(self) -> bool:
        """Whether a resumable handle is stored (the handle itself is never exposed by repr)."""
        return self._core.rec.handle is not None

    @property
    def connection(self) -> int:
        """The number of the current connection (as on ``OpenConnection``); 0 before the first."""
        return self._core.rec.connection

    @property
    def outage_attempts(self) -> int:
        """Connection attempts without progress in the current outage (the per-outage budget's count)."""
        return self._core.rec.outage_attempts

    @property
    def session_attempts(self) -> int:
        """Connection attempts without progress over the session (the per-session budget's count)."""
        return self._core.rec.session_attempts

    @property
    def handle_generation(self) -> int:
        """How many resumable handles the session has stored (it changes with every new handle)."""
        return self._core.rec.handle_generation

    @property
    def unconfirmed_seqs(self) -> tuple[int, ...]:
        """The seqs of every client message not yet confirmed, in the order they go (or went) on the wire."""
        return tuple(u.seq for u in self._core.rec.unconsumed)

    @property
    def unconfirmed_count(self) -> int:
        """How many client messages are not yet confirmed (the replay window's depth)."""
        return len(self._core.rec.unconsumed)

    def has_room_for(self, message: wire.ClientMessage) -> bool:
        """Whether the replay buffer can take ``message`` now (``send`` raises ``BufferFull`` otherwise)."""
        config, rec = self._core.config, self._core.rec
        size = window.approximate_size(message)
        return config.drop_oldest_when_full or not window.is_full(
            len(rec.unconsumed), rec.buffered_bytes, size, config
        )

    def deadlines(self) -> dict[Timer, float]:
        """Every armed timer and its deadline (a copy)."""
        return dict(self._core.rec.timers)

    def next_deadline(self) -> float | None:
        """The earliest armed timer's deadline, or ``None``."""
        timers = self._core.rec.timers
        return min(timers.values()) if timers else None

    # --- events in, commands out -------------------------------------------------------------------

    def handle(self, event: Event) -> tuple[Command, ...]:
        """Apply one event; return the commands to carry out, in order.

        Raises ``ProtocolError`` (impossible server behaviour), ``UsageError`` (an event the state does not
        allow), ``BufferFull`` (no room for a message) or ``RecordingError`` (the recorder failed); in every
        case the session is exactly as it was and nothing is recorded.
        """
        route = _ROUTES.get(type(event))
        if route is None:
            raise UsageError(f"not an event: {event!r}")
        core, recorder = self._core, self.recorder
        before = core.rec.copy() if recorder is not None else None
        try:
            route(core, event)
        except BaseException:
            core.out = []
            raise
        out, core.out = core.out, []
        core.rec.last_at = event.at
        if recorder is not None:
            try:
                recorder(event)
            except Exception as exc:
                assert before is not None
                core.rec = before
                core.settle()
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
        core = self._core
        out: list[Command] = [
            StartTimer(timer=timer, deadline=deadline)
            for timer, deadline in sorted(core.rec.timers.items(), key=lambda item: item[0].value)
        ]
        lost = restore_loss(self, at)
        if lost is not None:
            out.extend(self.handle(lost))
        return tuple(out)

    # --- snapshots and event sourcing --------------------------------------------------------------

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
        return self._core.rec.freeze(self._core.config)

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
        rec = session._core.rec = SessionRecord.thaw(snapshot)
        session._core.settle()
        if at is not None:
            rec.shift_clock(at - (snapshot.last_at + elapsed))
        return session


def restore_loss(session: Session, at: float) -> ConnectionClosed | None:
    """The close :meth:`Session.resume` handles when the saved process held a connection (else ``None``); a
    driver counts it (statistics, telemetry) like any close."""
    core, reason = session._core, "the process that held it ended"
    held = core.live or core.rec.attempt_open
    return ConnectionClosed(at=at, code=1006, reason=reason, connection=core.rec.connection) if held else None


# --- routing: which event goes where (the table decides what it does) --------------------------------


def _connect(core: Lifecycle, event: Connect) -> None:
    core.fire("connect", event)


def _connection_opened(core: Lifecycle, event: ConnectionOpened) -> None:
    if not core.traits.started:
        raise UsageError("ConnectionOpened before Connect")


def _message(core: Lifecycle, event: MessageReceived) -> None:
    message = event.message
    if core.live and type(message) is wire.ServerContent and event.connection in (None, core.rec.connection):
        core.content(message)  # the fast path: most frames are content on the live connection
        if core.drains:
            core.try_drain(event)
        return
    if not core.traits.started:
        raise UsageError("MessageReceived before Connect")
    if core.traits.ended or not core.carries(event.connection):
        return  # after the end, or from a connection the session already left: nothing to act on
    kind = type(message)
    if not core.live:
        before_setup = _BEFORE_SETUP.get(kind)
        if before_setup is not None:
            core.fire(before_setup, event)
        elif kind not in _PASSIVE:
            raise ProtocolError(f"{_KIND_NAMES[kind]} before setupComplete")
        return
    match message:
        case wire.SessionResumptionUpdate():
            _resumption_update(core, event, message)
        case wire.ServerContent():
            core.content(message)
        case wire.ToolCall():
            core.tool_call(message)
        case wire.ToolCallCancellation():
            core.cancel_calls(message)
        case wire.GoAway(time_left=time_left):
            deadline = core.go_away_deadline(event.at, time_left)
            core.fire("go_away", event, deadline=deadline)
            if deadline <= event.at:  # no time left (or none given): leave now, safe point or not
                core.fire("deadline", event)
        case wire.SetupComplete():
            raise ProtocolError("setupComplete: a second one on a live connection")
        case _:
            return  # passive kinds (usage, voice activity, unknown, in-band errors) change nothing
    if core.drains:
        core.try_drain(event)


def _resumption_update(core: Lifecycle, event: MessageReceived, update: wire.SessionResumptionUpdate) -> None:
    rec = core.rec
    index = update.last_consumed_client_message_index
    if core.config.transparent and index is not None:
        if index < rec.seen_index:
            raise ProtocolError(
                f"sessionResumptionUpdate.lastConsumedClientMessageIndex: went backwards "
                f"from {rec.seen_index} to {index}"
            )
        if index > rec.sent_index:
            raise ProtocolError(
                f"sessionResumptionUpdate.lastConsumedClientMessageIndex: {index} is past the last "
                f"message sent on this connection ({rec.sent_index})"
            )
    core.fire("handle_update" if update.resumable and update.new_handle else "not_resumable", event)


def _send(core: Lifecycle, event: SendRequested) -> None:
    message, traits = event.message, core.traits
    if not traits.started:
        raise UsageError("send before Connect")
    if traits.ended:
        raise UsageError(f"send while {core.rec.state.name}")
    kind = type(message)
    if kind is wire.Setup:
        raise UsageError("setup is sent by the session itself (SessionConfig.setup)")
    if kind not in _CLIENT_KINDS:
        raise UsageError(f"not a client message: {message!r}")
    config, rec = core.config, core.rec
    size, full = window.admit(message, len(rec.unconsumed), rec.buffered_bytes, config)
    if full:
        core.evict_for(size)
    if core.accept(message, event.at, size) and core.drains:
        core.try_drain(event)


def _connection_closed(core: Lifecycle, event: ConnectionClosed) -> None:
    if not core.traits.started:
        raise UsageError("ConnectionClosed before Connect")
    if not core.traits.ended and core.carries(event.connection):
        core.fire("connection_lost", event)


def _transport_failed(core: Lifecycle, event: TransportFailed) -> None:
    if not core.traits.started:
        raise UsageError("TransportFailed before Connect")
    if not core.traits.ended and event.connection in (None, core.rec.connection):
        core.fire("transport_failed", event)


def _timer(core: Lifecycle, event: TimerFired) -> None:
    timer = event.timer
    if core.rec.timers.pop(timer, None) is None:
        return  # stale: cancelled or replaced
    if timer is Timer.HEALTHY:
        core.rec.outage_attempts = 0
    elif timer is Timer.RESEED:
        core.release_held(event.at)
        if core.drains:
            core.try_drain(event)
    else:  # each armed timer belongs to the state that armed it: the table takes it from there
        core.fire(_TIMER_TRIGGERS[timer], event)


def _close_requested(core: Lifecycle, event: CloseRequested) -> None:
    if not core.traits.ended:
        connected = bool(core.rec.connection) and (core.live or core.rec.attempt_open)
        core.fire("close", event, connected=connected)


def _discard_requested(core: Lifecycle, event: DiscardRequested) -> None:
    if not core.traits.started:
        raise UsageError("DiscardRequested before Connect")
    if core.rec.holding:  # otherwise nothing is held (any more): nothing to discard
        core.discard_held()
        if core.drains:
            core.try_drain(event)


_ROUTES: dict[type, Callable[[Lifecycle, Any], None]] = {
    Connect: _connect,
    ConnectionOpened: _connection_opened,
    MessageReceived: _message,
    SendRequested: _send,
    ConnectionClosed: _connection_closed,
    TimerFired: _timer,
    CloseRequested: _close_requested,
    DiscardRequested: _discard_requested,
    TransportFailed: _transport_failed,
}
_TIMER_TRIGGERS = {Timer.GO_AWAY: "deadline", Timer.SETUP: "setup_timeout", Timer.BACKOFF: "backoff_elapsed"}
_BEFORE_SETUP = {wire.SetupComplete: "setup_complete", wire.ServerError: "setup_refused"}
_CLIENT_KINDS = frozenset({wire.ClientContent, wire.RealtimeInput, wire.ToolResponse})
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
