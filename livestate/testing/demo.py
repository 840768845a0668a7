"""``livestate demo``: a session through the websockets driver against FakeLiveServer, with faults.

Time is compressed (a connection lives about three seconds). The default script: a goAway arrives mid-turn
(the session drains to the turn boundary and resumes), a drop right after a tool call (the call is orphaned
and its answer never replayed), a drop whose resume the server rejects (a fresh session, said so), and a
connection age limit. Every drop and every rejected resume shows in the timeline with its close code. The
configuration is the default apart from the knobs that scale time. Both backends run: Vertex (transparent,
exactly once) and the Gemini API (handle-only, at least once). The summary says what the server consumed,
lost and duplicated.

:class:`Options` changes the script (``livestate demo --help``): the seed, the backends, the number of
messages, the faults (:func:`parse_faults`), and a directory for a journal and a timeline SVG per backend.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

import attrs

from livestate import Backend, SessionConfig, SessionState, commands, events, wire
from livestate.drivers.websockets import LiveSession, connect
from livestate.errors import UsageError
from livestate.machine import LIVE
from livestate.testing.server import FakeLiveServer, Fault, FaultPlan, tag_of

__all__ = ["DEFAULT_FAULTS", "FAULT_SYNTAX", "Options", "Report", "main", "parse_faults", "run", "run_one"]

MESSAGES = 300
INTERVAL = 0.02  # 50 messages a second, like 20 ms audio chunks
#: Message number ``TOOL_AT`` asks for a tool ("tool:weather"); every 60th message (59, 119 …) is a question.
TOOL_AT = 120

#: The faults of the default script, in :func:`parse_faults` syntax.
DEFAULT_FAULTS = "goaway@59,drop@120,reject@200"

#: ``--faults`` words and the server faults each one scripts, right after message N.
FAULT_SYNTAX: dict[str, tuple[str, ...]] = {
    "goaway": ("goaway",),  # a goAway (the connection closes go_away_time_left later)
    "silent": ("goaway_silent",),  # a goAway, then nothing until the close
    "drop": ("drop",),  # the connection drops without a close frame (1006)
    "error": ("error_1011",),  # the server closes with 1011
    "reject": ("reject_next_resume", "drop"),  # a drop whose resume the server rejects (1007)
}


def tag(i: int) -> str:
    """The text of demo message number ``i`` (what the fake server's ledger names it)."""
    if i == TOOL_AT:
        return "tool:weather"
    return f"m{i}" + ("?" if i % 60 == 59 else "")


def parse_faults(text: str) -> tuple[Fault, ...]:
    """Faults from a comma list of ``KIND@N`` (``N``: the message number, from 0, after which it happens).

    KIND is ``goaway``, ``silent`` (a goAway, then silence), ``drop`` (1006), ``error`` (1011) or ``reject``
    (a drop whose resume is rejected). ``""`` or ``none`` means no scripted faults (the connection age limit
    still sends a goAway every ~3 s). Raises ``UsageError`` naming the bad item."""
    faults: list[Fault] = []
    for item in (part.strip() for part in text.split(",")):
        if item in ("", "none"):
            continue
        kind, at, number = item.partition("@")
        if kind not in FAULT_SYNTAX or not at or not number.isdigit():
            raise UsageError(
                f"bad fault {item!r}: expected KIND@N with KIND one of {', '.join(FAULT_SYNTAX)} and N a "
                "message number, e.g. goaway@59,drop@120"
            )
        faults.extend(Fault(kind=k, on_text=tag(int(number))) for k in FAULT_SYNTAX[kind])
    return tuple(faults)


@attrs.frozen(kw_only=True)
class Options:
    """What the demo runs (the defaults are ``livestate demo`` without options)."""

    #: Seeds the session's jitter and the fake server's random choices (how far a handle lags).
    seed: int = 0
    #: ``"vertex"``, ``"gemini"`` or ``"both"`` (one after the other).
    backend: str = attrs.field(default="both", validator=attrs.validators.in_(("vertex", "gemini", "both")))
    #: How many messages the application sends, 50 a second.
    messages: int = attrs.field(default=MESSAGES, validator=attrs.validators.ge(1))
    faults: tuple[Fault, ...] = parse_faults(DEFAULT_FAULTS)
    #: Write ``<backend>.jsonl`` (a redacted journal) and ``<backend>.svg`` (its timeline) here.
    timeline: Path | None = None

    def plan(self) -> FaultPlan:
        """The fake server's plan: these faults, a goAway one second before a connection is 3 s old."""
        return FaultPlan(faults=self.faults, seed=self.seed, go_away_time_left=1.0, max_connection_age=3.0)


@attrs.define
class Report:
    """What one backend's run ended with, from the server's ledger."""

    backend: str
    sent: int
    consumed: int
    lost: int
    handed_back: int
    duplicated: int
    reconnects: int
    longest_gap: float
    notices: Counter[str]


def _config(vertex: bool, seed: int = 0) -> SessionConfig:
    options: dict[str, Any] = {
        "seed": seed,
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


def _recorders(*recorders: Any) -> Any:
    """One recorder that hands each event to every one of ``recorders``."""

    def record(event: events.Event) -> None:
        for recorder in recorders:
            recorder(event)

    return record


async def run_one(vertex: bool, out: TextIO, options: Options | None = None) -> Report:
    """One session of the demo against a fresh server; returns what the server's ledger says.

    With ``options.timeline``, the session's journal and its timeline SVG are written there."""
    from livestate import journal, picture

    options = options or Options()
    name = "Vertex AI, transparent (exactly once)" if vertex else "Gemini API, handle-only (at least once)"
    out.write(f"\n== {name}\n")
    sent: list[str] = []
    notices: Counter[str] = Counter()
    handed_back: set[str] = set()
    links: dict[str, set[int]] = {"resuming": set(), "closed_by_us": set()}
    config = _config(vertex, options.seed)
    stem = "vertex" if vertex else "gemini"
    sink: journal.Journal | None = None
    if options.timeline is not None:
        options.timeline.mkdir(parents=True, exist_ok=True)
        sink = journal.Journal.create(options.timeline / f"{stem}.jsonl", config)
    async with FakeLiveServer(options.plan(), vertex=vertex, update_every=5) as server:
        holder: list[LiveSession] = []
        recorder = _closes(holder, out, links)
        try:
            async with connect(
                server.url,
                config,
                on_command=_tracer(holder, out, links),
                journal=recorder if sink is None else _recorders(sink, recorder),
            ) as live:
                holder.append(live)
                watcher = asyncio.ensure_future(_watch(live, out, sent, notices, handed_back))
                for i in range(options.messages):
                    if live.state in (SessionState.FAILED, SessionState.CLOSED):
                        break
                    sent.append(tag(i))
                    await live.send(wire.RealtimeInput(text=tag(i)))
                    await asyncio.sleep(INTERVAL)
                await live.drain(1.0)  # let the last messages be confirmed
                reconnects = live.session.connection - 1
        finally:
            if sink is not None:
                sink.close()
        longest = await asyncio.wait_for(watcher, 10)
    if options.timeline is not None:
        contents = journal.read_journal(options.timeline / f"{stem}.jsonl")
        svg = options.timeline / f"{stem}.svg"
        svg.write_text(picture.render_svg(contents.config, contents.events, title=name), encoding="utf-8")
        out.write(f"  wrote {options.timeline / f'{stem}.jsonl'} and {svg}\n")
    mine = set(sent)
    seen: set[str] = set()
    duplicated = 0
    for session in server.sessions:
        counts = Counter(text for text in session.conversation if text in mine)
        seen |= set(counts)
        duplicated += sum(n - 1 for n in counts.values())
    lost = len(mine - seen - handed_back)
    returned = len(handed_back & mine)
    return Report(name, len(sent), len(seen), lost, returned, duplicated, reconnects, longest, notices)


async def run(out: TextIO, options: Options | None = None) -> list[Report]:
    """The backends ``options`` names (both by default), one after the other."""
    options = options or Options()
    backends = {"vertex": (True,), "gemini": (False,), "both": (True, False)}[options.backend]
    return [await run_one(vertex, out, options) for vertex in backends]


def main(out: TextIO = sys.stdout, options: Options | None = None) -> int:
    """Run the demo; exit status 1 if the server lost any message."""
    options = options or Options()
    out.write("livestate demo: a fake Live server on 127.0.0.1, a connection lives ~3 s, faults scripted\n")
    budget = 60 + 2 * options.messages * INTERVAL * (2 if options.backend == "both" else 1)
    reports = asyncio.run(asyncio.wait_for(run(out, options), budget))
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
        "    the model asks again with a new id after the replay), and the last messages no index or handle\n"
        "    had confirmed when the demo closed (sent; here consumed). Lost = never consumed and never\n"
        "    handed back.\n"
    )
    lost = sum(r.lost for r in reports)
    out.write("\n" + ("nothing lost." if lost == 0 else f"{lost} messages LOST.") + "\n")
    return 1 if lost else 0
