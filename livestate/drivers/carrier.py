"""Carrying out a session's commands on the event loop: the buffer, the timers, the application's queue, the
logs, statistics and telemetry, and write-ahead to a store before anything goes on the wire."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import attrs

from livestate import commands as c
from livestate import wire
from livestate.buffer import ReplayBuffer
from livestate.drivers.links import Connections
from livestate.drivers.telemetry import SessionTelemetry
from livestate.errors import RecordingError
from livestate.events import ConnectionClosed, Event, MessageReceived, Timer, TimerFired
from livestate.machine import LIVE, TERMINAL, SessionState
from livestate.stats import StatsCollector, reconnect_cause

__all__ = ["END", "Carrier"]

logger = logging.getLogger("livestate.driver")

#: Queued after the notices that explain the end: iteration stops there.
END = object()
_HANDING_BACK = (c.MessagesDropped, c.MessagesUnconfirmed, c.SessionFailed)


class Carrier(Connections):
    """Carries out each batch of commands in order: one ``match`` on the command type."""

    # Set up by the executor (declared here for the type checker).
    buffer: ReplayBuffer
    session_id: str
    _stats: StatsCollector
    _telemetry: SessionTelemetry | None
    _on_command: Callable[[c.Command], None] | None
    _collecting: list[tuple[int, wire.ClientMessage]] | None
    _failure: c.SessionFailed | None
    _alarms: dict[Timer, asyncio.TimerHandle]
    _loop: asyncio.AbstractEventLoop
    _t0: float
    _live: asyncio.Event

    def _apply(self, event: Event) -> tuple[c.Command, ...]:
        try:
            out = self.session.handle(event)
        except RecordingError as exc:
            logger.warning(
                "the session's recorder failed; carrying on without it: %s",
                exc.__cause__,
                extra=self._extra(),
            )
            self.session.recorder = None
            self._items.put_nowait(c.RecorderFailed(error=repr(exc.__cause__)))
            out = self.session.handle(event)
        if self._persistence is not None:  # record what changed before the commands are carried out
            self._persistence.observe(self.session, out, event)
        self._account(event, out)
        return out

    def _account(self, event: Event, out: tuple[c.Command, ...]) -> None:
        """Statistics, telemetry and the INFO log for ``event`` and its commands."""
        if out:
            self._stats.observe(self.session, event, out)
            if self._telemetry is not None:
                self._telemetry.observe(self.session, event, out, self._stats)
            if logger.isEnabledFor(logging.INFO):
                self._log(event, out)

    def _extra(self) -> dict[str, Any]:
        session = self.session
        return {
            "session_id": self.session_id,
            "connection": session.connection,
            "attempt": session.outage_attempts,
            "state": session.state.name,
        }

    def _log(self, event: Event, out: tuple[c.Command, ...]) -> None:
        """One INFO line per lifecycle fact in ``out`` (WARNING for what the application must act on)."""
        extra = self._extra()
        for command in out:
            match command:
                case c.StateChanged(old=SessionState.CONNECTING, new=SessionState.SETUP_COMPLETE):
                    logger.info("session %s connected", self.session_id, extra=extra)
                case c.StateChanged(new=SessionState.GOING_AWAY) if isinstance(event, MessageReceived):
                    left = getattr(event.message, "time_left", None)
                    logger.info("goAway: %s left", left.text if left else "no time", extra=extra)
                case c.StateChanged(new=SessionState.RECONNECTING, old=old) if (
                    old is not SessionState.RECONNECTING
                ):
                    cause = reconnect_cause(old, event)
                    reason = (
                        f" {event.reason!r}" if isinstance(event, ConnectionClosed) and event.reason else ""
                    )
                    logger.info("connection lost (%s%s): reconnecting", cause, reason, extra=extra)
                case c.StartTimer(timer=Timer.BACKOFF, deadline=deadline):
                    logger.info(
                        "backing off %.2f s before the next attempt", deadline - event.at, extra=extra
                    )
                case c.Resumed(state_restored=True, replayed=replayed):
                    logger.info("resumed, %d messages replayed", replayed, extra=extra)
                case c.Resumed(replayed=replayed, held=held):
                    logger.info(
                        "fresh session (state not restored): %d replayed, %d held for the re-seed",
                        replayed,
                        held,
                        extra=extra,
                    )
                case (
                    c.MessagesDropped(count=count, reason=reason)
                    | c.MessagesUnconfirmed(count=count, reason=reason)
                ):
                    logger.warning("%d messages handed back: %s", count, reason, extra=extra)
                case c.SessionFailed(reason=reason):
                    logger.warning("session failed: %s", reason, extra=extra)

    def _execute(self, out: tuple[c.Command, ...]) -> None:
        ended = changed = False
        released: dict[int, wire.ClientMessage] = {}
        for command in out:
            if isinstance(command, _HANDING_BACK) and command.seqs:
                messages = tuple((s, released[s]) for s in command.seqs if s in released)
                command = attrs.evolve(command, messages=messages)
                if self._collecting is not None and not isinstance(command, c.SessionFailed):
                    self._collecting.extend(messages)
            if self._on_command is not None:
                self._on_command(command)
            match command:
                case c.SendMessage(message=message):
                    self._transmit(message)
                case c.BufferMessage() | c.TrimThrough() | c.TrimSeqs():
                    self.buffer.apply(command)
                    changed = True
                case c.ReplayBuffered():
                    for _, message in self.buffer.apply(command):
                        self._transmit(message)
                case c.DropBuffered():
                    released.update(self.buffer.apply(command))
                    changed = True
                case (
                    c.OpenConnection(connection=number, setup=setup)
                    | c.ReconnectWithHandle(connection=number, setup=setup)
                ):
                    self._dial(number, setup)
                case c.CloseConnection(code=code, reason=reason):
                    self._close_link(code, reason)
                case c.StartTimer(timer=timer, deadline=deadline):
                    self._arm(timer, deadline)
                case c.CancelTimer(timer=timer):
                    armed = self._alarms.pop(timer, None)
                    if armed is not None:
                        armed.cancel()
                case c.StateChanged(new=new):
                    self._items.put_nowait(command)
                    changed = True
                    ended = self._on_state(new) or ended
                case c.SessionFailed():
                    self._failure = command
                    self._items.put_nowait(command)
                case _:  # the other notices: for the application
                    self._items.put_nowait(command)
        if ended:  # after the batch, so the notices that explain the end come first
            self._items.put_nowait(END)
        if changed:
            self._changed.pulse()

    def _on_state(self, state: SessionState) -> bool:
        if state in LIVE:
            self._live.set()
        else:
            self._live.clear()
        if state in TERMINAL:
            for armed in self._alarms.values():
                armed.cancel()
            self._alarms.clear()
            return True
        return False

    def _transmit(self, message: wire.ClientMessage) -> None:
        if self._link is not None:
            self._link.outgoing.put_nowait(message)

    def _arm(self, timer: Timer, deadline: float) -> None:
        old = self._alarms.pop(timer, None)
        if old is not None:
            old.cancel()
        self._alarms[timer] = self._loop.call_at(self._t0 + deadline, self._fire, timer)

    def _fire(self, timer: Timer) -> None:
        self._alarms.pop(timer, None)
        self._handle(TimerFired(at=self.now(), timer=timer))
