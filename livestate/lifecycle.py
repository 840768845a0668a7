"""The model that :mod:`livestate.machine`'s table fires: its named callbacks and conditions.

:class:`Lifecycle` is internal to ``Session``: ``transitions`` moves its ``state`` and calls the methods a
row names, with the trigger's inputs as arguments. The callbacks change the record and emit commands through
:class:`~livestate.core.Core`; whether a state changes is the table's decision alone.
"""

from __future__ import annotations

import logging

from livestate import wire
from livestate.commands import CloseConnection, Resumed, SessionFailed, StateChanged
from livestate.core import Core
from livestate.events import ConnectionClosed, Event, MessageReceived, Timer, TimerFired, TransportFailed
from livestate.machine import fire
from livestate.policy import CloseAction, backoff_delay, classify_close

__all__ = ["Lifecycle"]

logger = logging.getLogger("livestate.session")


class Lifecycle(Core):
    """A session's core as the transitions model: the callbacks and conditions the table names."""

    __slots__ = ()

    def fire(self, trigger: str, event: Event, **inputs: object) -> None:
        """Fire ``trigger`` through the table; a state change is told first (``StateChanged``)."""
        before = self.rec.state
        mark = len(self.out)
        fire(self, trigger, event=event, **inputs)
        after = self.rec.state
        if after is not before:
            self.settle()
            self.out.insert(mark, StateChanged(old=before, new=after))
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("session %s -> %s on %s", before.name, after.name, trigger)

    def try_drain(self, event: Event) -> None:
        """After an event in a state that drains: leave at the safe point."""
        if self.safe():
            self.fire("drain", event)

    # --- conditions named in the table -------------------------------------------------------------

    @property
    def attempt_open(self) -> bool:
        """Condition: a connection attempt is open (its ``setupComplete`` is awaited)."""
        return self.rec.attempt_open

    def at_safe_point(self, event: Event, **_: object) -> bool:
        """Condition: the turn is over, no call is pending, and a handle newer than any toolResponse is held."""
        return self.safe()

    def may_retry(self, event: Event, **_: object) -> bool:
        """Condition: this close (setup timeout, refused setup) is worth another attempt, and the budgets
        allow one."""
        return self.failure_reason(event) is None

    # --- callbacks named in the table (they only change fields and emit) -----------------------------

    def start(self, event: Event) -> None:
        """``connect``: open the first connection."""
        self.open(event.at)

    def on_setup_complete(self, event: Event) -> None:
        """``setup_complete``: go live, replay the unconsumed buffer (or hold it for the application's re-seed
        of a fresh session), say whether state was restored."""
        rec, config, at = self.rec, self.config, event.at
        self.cancel_timers(Timer.SETUP)
        self.start_timer(Timer.HEALTHY, at + config.healthy_after)
        was_reconnect, restored = rec.established, rec.resuming
        rec.attempt_open = False
        rec.established = True
        rec.resumable_now = False
        rec.seen_index = 0
        rec.sent_index = config.first_client_index - 1
        held = 0
        if was_reconnect and not restored:
            rec.tool_response_since_handle = False
            if rec.unconsumed and not config.replay_after_fresh_session:
                self.hand_back(
                    list(rec.unconsumed),
                    "fresh session: unconsumed input not replayed (replay_after_fresh_session=False)",
                    unsent=True,
                )
            elif rec.unconsumed and config.holds_for_reseed:
                rec.holding = True
                held = len(rec.unconsumed)
                self.start_timer(Timer.RESEED, at + config.reseed_timeout)
        replayed = 0 if rec.holding else self.transmit_unsent(at)
        if was_reconnect:
            self.emit(Resumed(state_restored=restored, replayed=replayed, held=held))

    def on_handle_update(self, event: MessageReceived) -> None:
        """``handle_update``: store the handle; trim what it covers."""
        rec = self.rec
        update: wire.SessionResumptionUpdate = event.message  # type: ignore[assignment]
        self.progress()
        rec.handle = update.new_handle
        rec.handle_generation += 1
        rec.tool_response_since_handle = False
        rec.resumable_now = True
        index = update.last_consumed_client_message_index
        if self.config.transparent:
            if index is not None:
                self.consumed(index)
                self.trim(lambda position, _: position <= index)
        else:
            horizon = event.at - self.config.guard_window
            self.trim(lambda _, u: u.sent_at is not None and u.sent_at < horizon)

    def on_not_resumable(self, event: MessageReceived) -> None:
        """``not_resumable``: the last good handle stays; no trimming, but a consumed index counts."""
        index = event.message.last_consumed_client_message_index  # type: ignore[union-attr]
        if index is not None and self.config.transparent:
            self.consumed(index)
        self.rec.resumable_now = False

    def on_go_away(self, event: Event, deadline: float) -> None:
        """``go_away``: arm the deadline timer, unless the deadline is now (then ``deadline`` follows at once)
        or an earlier goAway already set a sooner one."""
        current = self.rec.timers.get(Timer.GO_AWAY)
        if deadline > event.at and (current is None or deadline < current):
            self.start_timer(Timer.GO_AWAY, deadline)

    def reconnect_planned(self, event: Event) -> None:
        """``drain`` / ``deadline``: close this connection first, then resume on a new one."""
        self.emit(CloseConnection(code=1000, reason="livestate: goAway, resuming on a new connection"))
        self.connection_ended(event.at)
        self.open(event.at)

    def recover(self, event: Event) -> None:
        """``connection_lost`` / ``setup_timeout`` / ``setup_refused`` within budget: back off, then resume
        or start fresh."""
        rec, at = self.rec, event.at
        if rec.attempt_open:
            rec.attempt_open = False
            self.cancel_timers(Timer.SETUP)
            self.close_unanswered(event)
            if rec.resuming and self.close_action(event) is CloseAction.REJECTED:
                rec.handle = None  # the server refused it: fall back to a fresh session
        else:
            self.connection_ended(at)
        delay = backoff_delay(self.config, rec.outage_attempts + 1, rec.session_attempts)
        if delay <= 0:
            self.open(at)
        else:
            self.start_timer(Timer.BACKOFF, at + delay)

    def open_attempt(self, event: Event) -> None:
        """``backoff_elapsed``: open the next attempt."""
        self.open(event.at)

    def fail(self, event: Event) -> None:
        """``connection_lost`` / ``setup_timeout`` / ``setup_refused`` / ``transport_failed`` without retry:
        stop, hand back every unconfirmed message, and say why."""
        reason = self.failure_reason(event) or "no retry"
        self.close_unanswered(event)
        if isinstance(event, TransportFailed) and self.rec.connection:
            self.emit(CloseConnection(code=1011, reason="livestate: the transport failed"))
        seqs = tuple(u.seq for u in self.rec.unconsumed)
        self.wind_down("the session failed")
        self.emit(SessionFailed(reason=reason, seqs=seqs))

    def on_close(self, event: Event, connected: bool) -> None:
        """``close``: close the connection if one is open; hand back what was never confirmed."""
        if connected:
            self.emit(CloseConnection(code=1000, reason="livestate: closed by the application"))
        self.wind_down("the session closed")

    # --- what the callbacks ask --------------------------------------------------------------------

    def close_unanswered(self, event: Event) -> None:
        """An attempt that ends without a close from the server (a timeout, a refusal) is closed by us."""
        if isinstance(event, TimerFired):
            self.emit(CloseConnection(code=1000, reason="livestate: no setupComplete in time"))
        elif isinstance(event, MessageReceived):
            self.emit(CloseConnection(code=1000, reason="livestate: the server refused the setup"))

    def close_action(self, event: Event) -> CloseAction:
        if isinstance(event, ConnectionClosed):
            return classify_close(self.config.close_rules, event.code, event.reason)
        if isinstance(event, MessageReceived):  # an error frame in answer to setup: the setup was refused
            return CloseAction.REJECTED
        return CloseAction.RETRY

    def failure_reason(self, event: Event) -> str | None:
        """Why ``event`` ends the session, or ``None`` if another attempt is worth it and allowed."""
        if isinstance(event, TransportFailed):
            return event.reason
        rec, config = self.rec, self.config
        action = self.close_action(event)
        if isinstance(event, ConnectionClosed):
            what = f"close {event.code} {event.reason!r}"
        elif isinstance(event, MessageReceived):
            what = f"setup refused: {_describe_error(event.message)}"
        else:
            what = "setup timeout"
        if action is CloseAction.FATAL:
            return f"{what} is fatal"
        if action is CloseAction.REJECTED and not (rec.attempt_open and rec.resuming):
            return f"{what}: the server rejected the session"
        if rec.outage_attempts >= config.max_attempts_per_outage:
            return (
                f"{what}: {rec.outage_attempts} attempts without progress in this outage, the budget is spent"
            )
        if rec.session_attempts >= config.max_attempts_per_session:
            return f"{what}: {rec.session_attempts} attempts without progress in this session, the budget is spent"
        return None


def _describe_error(message: wire.ServerMessage) -> str:
    """The server's own words from an in-band error frame: code, status, message."""
    if not isinstance(message, wire.ServerError):  # pragma: no cover - only error frames refuse a setup
        return "an unexpected frame"
    parts = [str(part) for part in (message.code, message.status, message.message) if part not in (None, "")]
    return " ".join(parts) or "an error frame with no details"
