"""``livestate demo``: a session through the websockets driver against FakeLiveServer, with faults.

Time is compressed (a connection lives about three seconds). The script: a goAway arrives mid-turn (the
session drains to the turn boundary and resumes), a drop right after a tool call (the call is orphaned and
its answer never replayed), a drop whose resume the server rejects (a fresh session, said so), and a
connection age limit. Every drop and every rejected resume shows in the timeline with its close code. The
configuration is the default apart from the knobs that scale time. Both backends run: Vertex (transparent, exactly once) and the Gemini API
(handle-only, at least once). The summary says what the server consumed, lost and duplicated.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from typing import Any, TextIO

import attrs

from livestate import Backend, SessionConfig, SessionState, commands, events, wire
from livestate.drivers.websockets import LiveSession, connect
from livestate.machine import LIVE
from livestate.testing.server import FakeLiveServer, Fault, FaultPlan, tag_of

MESSAGES = 300
INTERVAL = 0.02  # 50 messages a second, like 20 ms audio chunks

PLAN = FaultPlan(
    faults=(
        Fault(kind="goaway", on_text="m59?"),  # mid-turn: the question starts a model turn
        Fault(kind="drop", on_text="tool:weather"),
        Fault(kind="reject_next_resume", on_text="m200"),
        Fault(kind="drop", on_text="m200"),
    ),
    go_away_time_left=1.0,
    max_connection_age=3.0,
)


@attrs.define
class Report:
    backend: str
    sent: int
    consumed: int
    lost: int
    handed_back: int
    duplicated: int
    reconnects: int
    longest_gap: float
    notices: Counter[str]


def _config(vertex: bool) -> SessionConfig:
    options: dict[str, Any] = {
        "goaway_margin": 0.2,
        "guard_window": 0.15,
        "backoff_initial": 0.05,
        "backoff_max": 0.5,
        "setup_timeout": 2.0,
    }
    if vertex:
        options.update(backend=Backend.VERTEX, transparent=True)
    return SessionConfig(setup=wire.Setup(model="models/gemini-live-2.5-flash"), **options)


def _line(out: TextIO, at: float, text: str) -> None:
    out.write(f"  {at:7.3f}s  {text}\n")
    out.flush()


async def _watch(
    live: LiveSession, out: TextIO, sent: list[str], notices: Counter[str], handed_back: set[str]
) -> float:
    """Print the timeline as it happens; answer tool calls; collect what the session hands back; return the
    longest time spent not live."""
    left_live: float | None = None
    longest = 0.0
    async for item in live:
        at = live.now()
        if isinstance(item, commands.StateChanged):
            if item.old in LIVE and item.new not in LIVE:
                left_live = at
            if item.new in LIVE and left_live is not None:
                longest, left_live = max(longest, at - left_live), None
            if not (item.old in LIVE and item.new in LIVE and item.new is not SessionState.GOING_AWAY):
                _line(out, at, f"{item.old.name:>14} -> {item.new.name}")
            continue
        if isinstance(item, wire.GoAway):
            _line(out, at, f"{'server':>14}    goAway, {item.time_left.text if item.time_left else '?'} left")
        elif isinstance(item, wire.ToolCall):
            for call in item.function_calls or ():
                _line(out, at, f"{'server':>14}    toolCall {call.id}")
                response = wire.FunctionResponse(id=call.id, name=call.name, response={"celsius": 14})
                await live.send(wire.ToolResponse(function_responses=(response,)))
                sent.append(f"response:{call.id}")
        elif isinstance(
            item,
            commands.Resumed
            | commands.TurnAborted
            | commands.ToolCallsOrphaned
            | commands.MessagesDropped
            | commands.MessagesUnconfirmed
            | commands.SessionFailed,
        ):
            notices[type(item).__name__] += 1
            if isinstance(item, commands.MessagesDropped | commands.MessagesUnconfirmed):
                handed_back.update(tag_of(message) for _, message in item.messages)
            _line(out, at, f"{'notice':>14}    {item}")
    return longest


def _closes(live_now: list[LiveSession], out: TextIO, links: dict[str, set[int]]) -> Any:
    """Print every connection the server ended (the session's events, as a journal would see them)."""

    def record(event: events.Event) -> None:
        at = live_now[0].now() if live_now else 0.0
        resuming = links["resuming"]
        if isinstance(event, events.ConnectionClosed) and event.connection not in links["closed_by_us"]:
            what = "resume REJECTED" if event.connection in resuming else "connection lost"
            _line(
                out,
                at,
                f"{'server':>14}    {what}: connection {event.connection}, close {event.code} {event.reason!r}",
            )
        elif isinstance(event, events.TransportFailed):
            _line(out, at, f"{'transport':>14}    failed: {event.reason}")

    return record


def _tracer(live_now: list[LiveSession], out: TextIO, links: dict[str, set[int]]) -> Any:
    """Print the commands that move connections, as the driver carries them out."""
    from livestate.journal import fingerprint

    current = [0]

    def trace(command: commands.Command) -> None:
        at = live_now[0].now() if live_now else 0.0
        if isinstance(command, commands.Resumed):
            links["resuming"].clear()
        if isinstance(command, commands.OpenConnection | commands.ReconnectWithHandle):
            current[0] = command.connection
        if isinstance(command, commands.OpenConnection):
            _line(out, at, f"{'command':>14}    open connection {command.connection} (fresh session)")
        elif isinstance(command, commands.ReconnectWithHandle):
            links["resuming"].add(command.connection)
            _line(
                out,
                at,
                f"{'command':>14}    open connection {command.connection}, resume {fingerprint(command.handle)}",
            )
        elif isinstance(command, commands.CloseConnection):
            links["closed_by_us"].add(current[0])
            _line(out, at, f"{'command':>14}    close connection {command.code}: {command.reason}")
        elif isinstance(command, commands.ReplayBuffered):
            _line(
                out,
                at,
                f"{'command':>14}    replay #{command.first_seq}..#{command.last_seq} before anything new",
            )

    return trace


async def run_one(vertex: bool, out: TextIO) -> Report:
    """One session of the demo against a fresh server; returns what the server's ledger says."""
    name = "Vertex AI, transparent (exactly once)" if vertex else "Gemini API, handle-only (at least once)"
    out.write(f"\n== {name}\n")
    sent: list[str] = []
    notices: Counter[str] = Counter()
    handed_back: set[str] = set()
    links: dict[str, set[int]] = {"resuming": set(), "closed_by_us": set()}
    async with FakeLiveServer(PLAN, vertex=vertex, update_every=5) as server:
        holder: list[LiveSession] = []
        async with connect(
            server.url,
            _config(vertex),
            on_command=_tracer(holder, out, links),
            journal=_closes(holder, out, links),
        ) as live:
            holder.append(live)
            watcher = asyncio.ensure_future(_watch(live, out, sent, notices, handed_back))
            for i in range(MESSAGES):
                if live.state in (SessionState.FAILED, SessionState.CLOSED):
                    break
                tag = "tool:weather" if i == 120 else f"m{i}" + ("?" if i % 60 == 59 else "")
                sent.append(tag)
                await live.send(wire.RealtimeInput(text=tag))
                await asyncio.sleep(INTERVAL)
            await live.drain(1.0)  # let the last messages be confirmed
            reconnects = live.session.connection - 1
        longest = await asyncio.wait_for(watcher, 10)
    mine = set(sent)
    seen: set[str] = set()
    duplicated = 0
    for session in server.sessions:
        counts = Counter(tag for tag in session.conversation if tag in mine)
        seen |= set(counts)
        duplicated += sum(n - 1 for n in counts.values())
    lost = len(mine - seen - handed_back)
    returned = len(handed_back & mine)
    return Report(name, len(sent), len(seen), lost, returned, duplicated, reconnects, longest, notices)


async def run(out: TextIO) -> list[Report]:
    """Both backends, one after the other."""
    return [await run_one(True, out), await run_one(False, out)]


def main(out: TextIO = sys.stdout) -> int:
    """Run the demo; exit status 1 if the server lost any message."""
    out.write("livestate demo: a fake Live server on 127.0.0.1, a connection lives ~3 s, faults scripted\n")
    reports = asyncio.run(asyncio.wait_for(run(out), 120))
    out.write("\n== summary\n")
    out.write(
        f"  {'backend':40} {'sent':>5} {'consumed':>9} {'lost':>5} {'handed back*':>13} {'duplicated':>11} "
        f"{'reconnects':>11} {'longest gap':>12}\n"
    )
    for r in reports:
        out.write(
            f"  {r.backend:40} {r.sent:>5} {r.consumed:>9} {r.lost:>5} {r.handed_back:>13} "
            f"{r.duplicated:>11} {r.reconnects:>11} {r.longest_gap * 1000:>9.0f} ms\n"
        )
    out.write(
        "  * handed back to the application as the messages themselves (MessagesDropped /\n"
        "    MessagesUnconfirmed): the answer to a tool call the resumed session never issued (never sent;\n"
        "    the model asks again with a new id after the replay), and on the Gemini API the last messages\n"
        "    no handle had confirmed when the demo closed (sent; here consumed). Lost = never consumed and\n"
        "    never handed back.\n"
    )
    lost = sum(r.lost for r in reports)
    out.write("\n" + ("nothing lost." if lost == 0 else f"{lost} messages LOST.") + "\n")
    return 1 if lost else 0
