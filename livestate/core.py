"""The session's working parts: one record, its config, and the commands an event brings.

:class:`Core` holds what a session is (a :class:`~livestate.record.SessionRecord`), the config it runs under
and the outbox of the event being handled. Its methods change the record and emit commands; they decide
nothing about states (that is :mod:`livestate.machine`'s table, whose callbacks live in
:mod:`livestate.lifecycle`). The replay window and the tool calls are kept by the pure helpers of
:mod:`livestate.window` and :mod:`livestate.calls`, which return data; only these methods turn it into
commands.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from livestate import calls, window, wire
from livestate.commands import (
    BufferMessage,
    CancelTimer,
    Command,
    DropBuffered,
    MessagesDropped,
    MessagesUnconfirmed,
    OpenConnection,
    ReconnectWithHandle,
    ReplayBuffered,
    SendMessage,
    StartTimer,
    ToolCallsOrphaned,
    TrimSeqs,
    TrimThrough,
    TurnAborted,
)
from livestate.events import Timer
from livestate.machine import TRAITS, SessionState, Traits
from livestate.policy import SessionConfig
from livestate.record import SessionRecord
from livestate.window import Unconsumed

__all__ = ["ORPHAN_ANSWER", "Core"]

#: Why an answer to a call the resumed session never issued is handed back instead of sent.
ORPHAN_ANSWER = "toolResponse to a call the resumed session never issued"


class Core:
    """A session's record, config and outbox, and every change to them that emits a command."""

    __slots__ = ("config", "drains", "live", "out", "rec", "traits")

    def __init__(self, config: SessionConfig, rec: SessionRecord) -> None:
        self.config = config
        self.rec = rec
        self.out: list[Command] = []
        self.traits: Traits = TRAITS[rec.state]
        self.live = self.traits.live
        self.drains = self.traits.drains

    @property
    def state(self) -> SessionState:
        """The record's state: what ``transitions`` reads and sets on its model."""
        return self.rec.state

    @state.setter
    def state(self, value: SessionState) -> None:
        self.rec.state = value

    def settle(self) -> None:
        """Cache the current state's traits (read on every event: enum hashing is not free)."""
        traits: Traits = TRAITS[self.rec.state]
        self.traits, self.live, self.drains = traits, traits.live, traits.drains

    def carries(self, connection: int | None) -> bool:
        """Whether an event of ``connection`` belongs to the connection the session has open (or is opening):
        a frame or close of a connection it already left is ignored."""
        rec = self.rec
        return (connection is None or connection == rec.connection) and (self.live or rec.attempt_open)

    def emit(self, command: Command) -> None:
        self.out.append(command)

    def start_timer(self, timer: Timer, deadline: float) -> None:
        self.rec.timers[timer] = deadline
        self.out.append(StartTimer(timer=timer, deadline=deadline))

    def cancel_timers(self, *timers: Timer) -> None:
        for timer in timers:
            if self.rec.timers.pop(timer, None) is not None:
                self.out.append(CancelTimer(timer=timer))

    def go_away_deadline(self, at: float, time_left: wire.Duration | None) -> float:
        """``at + timeLeft - goaway_margin``, never before ``at``; ``at`` itself when ``timeLeft`` is absent."""
        if time_left is None:
            return at
        return max(at, at + time_left.seconds - self.config.goaway_margin)

    # --- progress and the safe point -------------------------------------------------------------

    def progress(self) -> None:
        """This connection did useful work: the outage is over, and its attempt is not counted."""
        rec = self.rec
        if not rec.progressed and not rec.attempt_open:
            rec.progressed = True
            rec.outage_attempts = 0
            if rec.session_attempts > 0:
                rec.session_attempts -= 1

    def consumed(self, index: int) -> None:
        """Transparent mode: the server consumed up to wire ``index`` on this connection (an advance is
        progress). The one place ``seen_index`` moves forward."""
        rec = self.rec
        if index > rec.seen_index:
            self.progress()
            rec.seen_index = index

    def safe(self) -> bool:
        """The turn is over, no call is pending, and a handle newer than any toolResponse is held."""
        rec = self.rec
        return (
            not rec.turn_open
            and not rec.pending_calls
            and rec.handle is not None
            and rec.resumable_now
            and not rec.tool_response_since_handle
            and not rec.holding
        )

    def content(self, content: wire.ServerContent) -> None:
        """Server content: the turn flag (and the first sign of progress). The fast path of every session."""
        rec = self.rec
        if not rec.progressed:
            self.progress()
        if content.model_turn is not None or content.output_transcription is not None:
            rec.turn_open = True
        if content.interrupted or (content.turn_complete and content.interaction_status != "IN_PROGRESS"):
            rec.turn_open = False

    def cancel_calls(self, cancellation: wire.ToolCallCancellation) -> None:
        """The server cancelled these calls: they are no longer pending."""
        calls.cancel_calls(self.rec.pending_calls, cancellation.ids or ())

    def tool_call(self, call: wire.ToolCall) -> None:
        """The model asks for function calls: track them against the current handle."""
        rec = self.rec
        calls.add_calls(
            rec.pending_calls, call.function_calls or (), rec.handle_generation, self.config.max_pending_calls
        )
        self.progress()
        rec.turn_open = True

    # --- client messages ---------------------------------------------------------------------------

    def accept(self, message: wire.ClientMessage, at: float, size: int) -> bool:
        """Number a checked client message and send it now (live) or buffer it for the next connection.
        ``False`` when it was handed back at once instead (an answer to a call the resumed session never
        issued)."""
        rec = self.rec
        rec.seq += 1
        seq = rec.seq
        generation: int | None = None
        call_ids: tuple[str, ...] = ()
        if type(message) is wire.ToolResponse:
            if calls.answers_only_orphans(rec.pending_calls, rec.orphaned_ids, message):
                # The resumed session never issued these calls: sending the answer would confuse it.
                rec.buffered_bytes += size
                rec.unconsumed.append(Unconsumed(seq, None, size))
                self.emit(BufferMessage(seq=seq, message=message))
                self.hand_back([rec.unconsumed[-1]], ORPHAN_ANSWER, unsent=True)
                return False
            rec.tool_response_since_handle = True
            generation, call_ids = calls.answer_calls(rec.pending_calls, message)
        reseed_done = False
        if self.live and (not rec.holding or type(message) is wire.ClientContent):
            # Out now. While a fresh session holds the old input, only the re-seed (clientContent) goes
            # ahead of it; it is placed before the held messages, in wire order.
            rec.sent_index += 1
            entry = Unconsumed(seq, at, size, generation, call_ids, True)
            position = window.sent_count(rec.unconsumed)
            if position == 0:
                rec.first_unconsumed_index = rec.sent_index
            rec.unconsumed.insert(position, entry)
            self.emit(SendMessage(message=message, seq=seq))
            reseed_done = rec.holding and bool(message.turn_complete)  # type: ignore[union-attr]
        else:
            rec.unconsumed.append(Unconsumed(seq, None, size, generation, call_ids))
        rec.buffered_bytes += size
        self.emit(BufferMessage(seq=seq, message=message))
        if reseed_done:
            self.release_held(at)
        return True

    def transmit_unsent(self, at: float) -> int:
        """Send every unconsumed message that has not gone out on this connection, in wire order."""
        rec = self.rec
        start = window.sent_count(rec.unconsumed)
        if start == len(rec.unconsumed):
            return 0
        if start == 0:
            rec.first_unconsumed_index = rec.sent_index + 1
        sent = window.mark_sent(rec.unconsumed, start, at)
        rec.sent_index += len(sent)
        for first, last in window.replay_runs(rec.unconsumed, sent):
            self.emit(ReplayBuffered(first_seq=first, last_seq=last))
        return len(sent)

    def release_held(self, at: float) -> None:
        """The re-seed is done (or its time is up): the held input goes out after it."""
        self.rec.holding = False
        self.cancel_timers(Timer.RESEED)
        self.transmit_unsent(at)

    def discard_held(self) -> None:
        """The application re-seeded without the held input: hand it back instead of replaying it."""
        rec = self.rec
        held = rec.unconsumed[window.sent_count(rec.unconsumed) :]
        rec.holding = False
        self.cancel_timers(Timer.RESEED)
        self.hand_back(
            held, "discarded by the application instead of replaying it into the fresh session", unsent=True
        )

    def trim(self, consumed: Callable[[int, Unconsumed], bool]) -> None:
        """Forget the leading messages the server confirmed; tell the transport which."""
        rec = self.rec
        trimmed = window.trim(rec.unconsumed, rec.first_unconsumed_index, consumed)
        if not trimmed:
            return
        rec.buffered_bytes -= sum(u.size for u in trimmed)
        rec.first_unconsumed_index += len(trimmed)
        last = max(u.seq for u in trimmed)
        if not rec.unconsumed or last < min(u.seq for u in rec.unconsumed):
            self.emit(TrimThrough(seq=last))
        else:  # a re-seed went out ahead of older held input: not a prefix of the seqs
            self.emit(TrimSeqs(seqs=tuple(u.seq for u in trimmed)))

    def evict_for(self, size: int) -> None:
        """``drop_oldest_when_full``: make room for a ``size``-byte message by handing back the oldest."""
        rec, config = self.rec, self.config
        count = window.evict_count(
            rec.unconsumed, rec.buffered_bytes, size, config.max_buffer_messages, config.max_buffer_bytes
        )
        rec.first_unconsumed_index += min(count, window.sent_count(rec.unconsumed))
        self.hand_back(
            rec.unconsumed[:count], "replay buffer full: the oldest were evicted (drop_oldest_when_full)"
        )

    def hand_back(self, entries: list[Unconsumed], reason: str, *, unsent: bool = False) -> None:
        """Forget ``entries`` and hand them back: those that ever went out as unconfirmed, the others as
        dropped (all of them with ``unsent``: whatever went out cannot be in the conversation that goes on)."""
        if not entries:
            return
        rec = self.rec
        gone = {u.seq for u in entries}
        rec.unconsumed = [u for u in rec.unconsumed if u.seq not in gone]
        rec.buffered_bytes -= sum(u.size for u in entries)
        self.emit(DropBuffered(seqs=tuple(u.seq for u in entries)))
        unconfirmed = () if unsent else tuple(u.seq for u in entries if u.transmitted)
        dropped = tuple(u.seq for u in entries if unsent or not u.transmitted)
        if unconfirmed:
            self.emit(MessagesUnconfirmed(count=len(unconfirmed), reason=reason, seqs=unconfirmed))
        if dropped:
            self.emit(MessagesDropped(count=len(dropped), reason=reason, seqs=dropped))

    # --- connections -------------------------------------------------------------------------------

    def open(self, at: float) -> None:
        """Open the next connection: resume with the handle if it is still good, else start fresh."""
        rec = self.rec
        handle = rec.handle
        ended = rec.connection_ended_at
        if handle is not None and ended is not None and at - ended > self.config.handle_ttl:
            handle = rec.handle = None  # too old: the service would refuse it
        self.orphan_calls(handle is not None)
        rec.outage_attempts += 1
        rec.session_attempts += 1
        rec.connection += 1
        rec.attempt_open = True
        rec.progressed = False
        rec.resuming = handle is not None
        setup = self.config.setup_for(handle, replacing=handle is None and rec.established)
        if handle is None:
            command: Command = OpenConnection(
                setup=setup, attempt=rec.outage_attempts, connection=rec.connection
            )
        else:
            command = ReconnectWithHandle(
                handle=handle, setup=setup, attempt=rec.outage_attempts, connection=rec.connection
            )
        self.emit(command)
        self.start_timer(Timer.SETUP, at + self.config.setup_timeout)

    def connection_ended(self, at: float) -> None:
        rec = self.rec
        rec.connection_ended_at = at
        rec.resumable_now = False
        rec.holding = False
        self.cancel_timers(Timer.GO_AWAY, Timer.HEALTHY, Timer.RESEED)
        if rec.turn_open:
            rec.turn_open = False
            self.emit(TurnAborted())
        rec.unconsumed = [u if u.sent_at is None else attrs.evolve(u, sent_at=None) for u in rec.unconsumed]

    def orphan_calls(self, resuming: bool) -> None:
        """Calls that came after the handle in use are unknown to the resumed session: report them, and
        hand back buffered answers to them."""
        rec = self.rec
        cutoff = rec.handle_generation if resuming else -1
        rec.pending_calls, orphaned = calls.split_orphans(rec.pending_calls, cutoff)
        dropped = [
            u for u in rec.unconsumed if u.calls_generation is not None and u.calls_generation >= cutoff
        ]
        ids = [c.id for c in orphaned if c.id is not None] + [i for u in dropped for i in u.call_ids]
        if orphaned or dropped:
            self.emit(ToolCallsOrphaned(ids=tuple(ids)))
            calls.remember_orphans(rec.orphaned_ids, ids, self.config.max_pending_calls)
        if dropped:
            self.hand_back(dropped, ORPHAN_ANSWER, unsent=True)

    def wind_down(self, reason: str) -> None:
        """The end: cancel every timer, close the turn, orphan the calls, hand back every message."""
        rec = self.rec
        self.cancel_timers(*sorted(rec.timers, key=lambda t: t.value))
        rec.attempt_open = False
        rec.holding = False
        if rec.turn_open:
            rec.turn_open = False
            self.emit(TurnAborted())
        if rec.pending_calls:
            ids = tuple(c.id for c in rec.pending_calls.values() if c.id is not None)
            self.emit(ToolCallsOrphaned(ids=ids))
            rec.pending_calls = {}
        self.hand_back(list(rec.unconsumed), f"{reason} before the server confirmed them")
        rec.buffered_bytes = 0
