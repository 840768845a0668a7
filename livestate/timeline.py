"""Replay a recorded session into a readable timeline and a summary (what ``livestate replay`` prints).

Pure: it handles the events with a fresh ``Session`` and describes what happened. Handles appear only as
fingerprints, payloads only as their size.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import attrs

from livestate import commands as c
from livestate import wire
from livestate.events import (
    ConnectionClosed,
    Event,
    MessageReceived,
    SendRequested,
    TimerFired,
)
from livestate.journal import fingerprint
from livestate.policy import SessionConfig
from livestate.session import Session

__all__ = ["Row", "Summary", "TimelineRow", "describe_command", "describe_event", "replay"]


@attrs.frozen
class TimelineRow:
    """One event of the timeline."""

    at: float
    event: str
    state: str
    commands: tuple[str, ...]


#: The old name (machine.Row is the transition table's row): kept as an alias.
Row = TimelineRow


@attrs.frozen
class Summary:
    """Totals over a whole session."""

    events: int
    connections: int
    resumes: int
    fresh_sessions: int
    sent: int
    consumed: int
    replayed: int
    #: Handed back, never delivered to the conversation that goes on (``MessagesDropped``).
    dropped: int
    #: Handed back after going out, never proven consumed (``MessagesUnconfirmed``): the server may have them.
    unconfirmed: int
    final_state: str
    seconds_in_state: dict[str, float]


def _fields(obj: Any) -> str:
    present = [a.name for a in attrs.fields(type(obj)) if getattr(obj, a.name) not in (None, False, ())]
    return ", ".join(present)


def describe_message(message: wire.WireMessage) -> str:
    """A message kind and the fields it carries, payloads reduced to their size."""
    if isinstance(message, wire.RealtimeInput):
        parts = []
        for name in ("audio", "video"):
            blob = getattr(message, name)
            if blob is not None:
                parts.append(f"{name} {len(blob.data or '')}B64")
        if message.text is not None:
            text = message.text if len(message.text) <= 24 else message.text[:21] + "..."
            parts.append(f"text {text!r}")
        rest = [
            n
            for n in ("audio_stream_end", "activity_start", "activity_end", "media_chunks")
            if getattr(message, n)
        ]
        return f"realtimeInput({', '.join(parts + rest)})"
    if isinstance(message, wire.SessionResumptionUpdate):
        bits = [f"handle {fingerprint(message.new_handle)}" if message.new_handle else "no handle"]
        bits.append("resumable" if message.resumable else "not resumable")
        if message.last_consumed_client_message_index is not None:
            bits.append(f"index {message.last_consumed_client_message_index}")
        return f"sessionResumptionUpdate({', '.join(bits)})"
    if isinstance(message, wire.GoAway):
        return f"goAway({message.time_left.text if message.time_left else 'no timeLeft'})"
    if isinstance(message, wire.ToolCall | wire.ToolResponse):
        items = message.function_calls if isinstance(message, wire.ToolCall) else message.function_responses
        ids = ", ".join(str(item.id) for item in items or ())
        return f"{'toolCall' if isinstance(message, wire.ToolCall) else 'toolResponse'}({ids})"
    if isinstance(message, wire.UnknownMessage):
        return f"unknown({', '.join(message.keys)})"
    name = type(message).__name__
    return f"{name[0].lower()}{name[1:]}({_fields(message)})"


def describe_event(event: Event) -> str:
    """One line for an event."""
    if isinstance(event, MessageReceived):
        conn = f" #{event.connection}" if event.connection is not None else ""
        return f"recv{conn} {describe_message(event.message)}"
    if isinstance(event, SendRequested):
        return f"send {describe_message(event.message)}"
    if isinstance(event, ConnectionClosed):
        reason = event.reason if len(event.reason) <= 40 else event.reason[:37] + "..."
        conn = f" #{event.connection}" if event.connection is not None else ""
        return f"closed{conn} {event.code} {reason!r}"
    if isinstance(event, TimerFired):
        return f"timer {event.timer.value}"
    return type(event).__name__


def describe_command(command: c.Command) -> str:
    """One short phrase for a command (notices included); handles as fingerprints."""
    if isinstance(command, c.SendMessage | c.BufferMessage):
        return f"{type(command).__name__}#{command.seq}"
    if isinstance(command, c.TrimThrough):
        return f"Trim<=#{command.seq}"
    if isinstance(command, c.TrimSeqs):
        return f"Trim{list(command.seqs)}"
    if isinstance(command, c.ReplayBuffered):
        return f"Replay#{command.first_seq}..{command.last_seq}"
    if isinstance(command, c.DropBuffered):
        return f"Drop{list(command.seqs)}"
    if isinstance(command, c.StartTimer):
        return f"StartTimer({command.timer.value} @{command.deadline:.3f})"
    if isinstance(command, c.CancelTimer):
        return f"CancelTimer({command.timer.value})"
    if isinstance(command, c.OpenConnection):
        return f"Open(#{command.connection}, attempt {command.attempt}, fresh)"
    if isinstance(command, c.ReconnectWithHandle):
        return f"Resume(#{command.connection}, attempt {command.attempt}, {fingerprint(command.handle)})"
    if isinstance(command, c.CloseConnection):
        return f"Close({command.code})"
    if isinstance(command, c.StateChanged):
        return f"-> {command.new.name}"
    if isinstance(command, c.Resumed):
        held = f", held={command.held}" if command.held else ""
        return f"Resumed(restored={command.state_restored}, replayed={command.replayed}{held})"
    if isinstance(command, c.MessagesDropped):
        return f"Dropped({command.count}: {command.reason})"
    if isinstance(command, c.MessagesUnconfirmed):
        return f"Unconfirmed({command.count}: {command.reason})"
    if isinstance(command, c.ToolCallsOrphaned):
        return f"Orphaned({', '.join(command.ids)})"
    if isinstance(command, c.SessionFailed):
        return f"Failed({command.reason})"
    return type(command).__name__


def replay(config: SessionConfig, events: Iterable[Event]) -> tuple[list[TimelineRow], Summary]:
    """Handle ``events`` with a fresh session; return the timeline and the summary.

    "Replay" as in ``Session.replay`` and ``livestate replay``: recorded events handled again, nothing on the
    wire (not the ``ReplayBuffered`` resend of unconfirmed messages)."""
    session = Session(config)
    rows: list[TimelineRow] = []
    counts: dict[str, int] = defaultdict(int)
    buffered: list[int] = []
    time_in: dict[str, float] = defaultdict(float)
    state_since: float | None = None
    for event in events:
        before = session.state
        out = session.handle(event)
        if state_since is not None:
            time_in[before.name] += event.at - state_since
        state_since = event.at
        counts["events"] += 1
        if isinstance(event, SendRequested):
            counts["sent"] += 1
        for command in out:
            if isinstance(command, c.OpenConnection | c.ReconnectWithHandle):
                counts["connections"] += 1
            elif isinstance(command, c.Resumed):
                counts["resumes" if command.state_restored else "fresh"] += 1
                counts["replayed"] += command.replayed
            elif isinstance(command, c.MessagesDropped):
                counts["dropped"] += command.count
            elif isinstance(command, c.MessagesUnconfirmed):
                counts["unconfirmed"] += command.count
            elif isinstance(command, c.BufferMessage):
                buffered.append(command.seq)
            elif isinstance(command, c.TrimThrough):
                kept = [s for s in buffered if s > command.seq]
                counts["consumed"] += len(buffered) - len(kept)
                buffered = kept
            elif isinstance(command, c.TrimSeqs):
                confirmed = set(command.seqs)
                counts["consumed"] += len(confirmed)
                buffered = [s for s in buffered if s not in confirmed]
            elif isinstance(command, c.DropBuffered):
                gone = set(command.seqs)
                buffered = [s for s in buffered if s not in gone]
        rows.append(
            TimelineRow(
                event.at, describe_event(event), session.state.name, tuple(describe_command(x) for x in out)
            )
        )
    summary = Summary(
        events=counts["events"],
        connections=counts["connections"],
        resumes=counts["resumes"],
        fresh_sessions=counts["fresh"],
        sent=counts["sent"],
        consumed=counts["consumed"],
        replayed=counts["replayed"],
        dropped=counts["dropped"],
        unconfirmed=counts["unconfirmed"],
        final_state=session.state.name,
        seconds_in_state={k: round(v, 6) for k, v in time_in.items()},
    )
    return rows, summary


def format_text(rows: list[TimelineRow], summary: Summary, *, width: int = 110) -> str:
    """The timeline as aligned columns, then the summary."""
    event_width = min(60, max((len(r.event) for r in rows), default=5))
    state_width = max((len(r.state) for r in rows), default=5)
    lines = [f"{'time':>10}  {'event':<{event_width}}  {'state':<{state_width}}  commands"]
    for row in rows:
        event = row.event if len(row.event) <= event_width else row.event[: event_width - 3] + "..."
        cmds = ", ".join(x for x in row.commands if not x.startswith("->"))
        line = f"{row.at:>10.3f}  {event:<{event_width}}  {row.state:<{state_width}}  {cmds}"
        lines.append(line if len(line) <= width + 60 else line[: width + 57] + "...")
    s = summary
    lines += [
        "",
        f"events {s.events}, connections {s.connections}, resumes {s.resumes}, fresh sessions {s.fresh_sessions}",
        f"messages: sent {s.sent}, consumed {s.consumed}, replayed {s.replayed}, handed back: "
        f"dropped {s.dropped}, unconfirmed {s.unconfirmed}",
        f"final state {s.final_state}; seconds in each state: "
        + ", ".join(f"{k} {v:.3f}" for k, v in sorted(s.seconds_in_state.items(), key=lambda kv: -kv[1])),
    ]
    return "\n".join(lines)
