"""A timeline picture of a recorded session, as plain SVG text (what ``livestate timeline`` writes).

Pure, like :mod:`livestate.timeline`: the events go through a fresh ``Session`` and :func:`layout` reads what
happened from its commands. Each connection is one bar on a time axis (``<rect class="connection">``), from
the command that opened it to its close; the part before ``setupComplete`` is pale. Between live
connections, gaps are shaded with their length. Markers on the bars: goAways (with the time left), tool
calls, resumes and fresh sessions (with the number replayed), messages handed back (``MessagesDropped`` /
``MessagesUnconfirmed``, with counts), turns cut (``TurnAborted``) and a failure. Hovering shows details.
Handles never appear: there are none in the events a redacted journal holds, and the picture prints only
fingerprints.
"""

from __future__ import annotations

from collections.abc import Iterable
from xml.sax.saxutils import escape, quoteattr

import attrs

from livestate import commands as c
from livestate import wire
from livestate.events import ConnectionClosed, Event, MessageReceived
from livestate.journal import fingerprint
from livestate.machine import LIVE, TERMINAL
from livestate.policy import SessionConfig
from livestate.session import Session

__all__ = ["Bar", "Gap", "Layout", "Marker", "layout", "render_svg"]


@attrs.define
class Bar:
    """One connection: opened at ``start``, live from ``live_at`` (``None``: never), ended at ``end``."""

    connection: int
    start: float
    #: ``"fresh"`` (``OpenConnection``) or ``"resume"`` (``ReconnectWithHandle``, with the handle's fingerprint).
    opened: str
    live_at: float | None = None
    end: float | None = None
    #: How it ended: ``"closed by livestate 1000"``, ``"closed 1006"`` …; empty while still open.
    ended: str = ""


@attrs.frozen
class Marker:
    """Something that happened on a connection at ``at``; ``kind`` picks the glyph, ``label`` the text."""

    at: float
    connection: int
    #: One of ``goaway``, ``tool_call``, ``resumed``, ``fresh``, ``handed_back``, ``turn_aborted``, ``failed``.
    kind: str
    label: str
    #: Messages replayed (``resumed``, ``fresh``) or handed back (``handed_back``); drawn beside the glyph.
    count: int | None = None


@attrs.frozen
class Gap:
    """A stretch without a live connection: between two live ones, or from the last one to the end of a
    session still reconnecting."""

    start: float
    end: float


@attrs.frozen
class Layout:
    """Everything the picture shows, in session time."""

    bars: tuple[Bar, ...]
    markers: tuple[Marker, ...]
    gaps: tuple[Gap, ...]
    start: float
    end: float


def _marker(command: c.Command, at: float, connection: int) -> Marker | None:
    if isinstance(command, c.Resumed):
        kind = "resumed" if command.state_restored else "fresh"
        held = f", held {command.held}" if command.held else ""
        word = "resumed" if command.state_restored else "fresh session"
        return Marker(at, connection, kind, f"{word}, replayed {command.replayed}{held}", command.replayed)
    if isinstance(command, c.MessagesDropped | c.MessagesUnconfirmed):
        word = "dropped" if isinstance(command, c.MessagesDropped) else "unconfirmed"
        return Marker(
            at, connection, "handed_back", f"{command.count} {word}: {command.reason}", command.count
        )
    if isinstance(command, c.TurnAborted):
        return Marker(at, connection, "turn_aborted", "turn cut")
    if isinstance(command, c.SessionFailed):
        return Marker(at, connection, "failed", f"failed: {command.reason}")
    return None


def layout(config: SessionConfig, events: Iterable[Event]) -> Layout:
    """Handle ``events`` with a fresh session and lay out the connections, markers and gaps."""
    session = Session(config)
    bars: dict[int, Bar] = {}
    markers: list[Marker] = []
    gaps: list[Gap] = []
    left_live: float | None = None
    first: float | None = None
    last = 0.0
    for event in events:
        first = event.at if first is None else first
        last = event.at
        before, was = session.state, session.connection
        out = session.handle(event)
        current = session.connection
        if isinstance(event, MessageReceived) and (event.connection in (None, was)):
            message = event.message
            if isinstance(message, wire.GoAway):
                left = message.time_left.text if message.time_left else "no timeLeft"
                markers.append(Marker(event.at, was, "goaway", f"goAway, {left} left"))
            elif isinstance(message, wire.ToolCall):
                ids = ", ".join(str(call.id) for call in message.function_calls or ())
                markers.append(Marker(event.at, was, "tool_call", f"tool call {ids}"))
        if isinstance(event, ConnectionClosed):
            bar = bars.get(event.connection if event.connection is not None else was)
            if bar is not None and bar.end is None:
                bar.end, bar.ended = event.at, f"closed {event.code} {event.reason}".rstrip()
        for command in out:
            if isinstance(command, c.OpenConnection | c.ReconnectWithHandle):
                for bar in bars.values():  # break before make: anything still open is over
                    if bar.end is None:
                        bar.end, bar.ended = event.at, "replaced"
                opened = (
                    f"resume {fingerprint(command.handle)}"
                    if isinstance(command, c.ReconnectWithHandle)
                    else "fresh"
                )
                bars[command.connection] = Bar(command.connection, event.at, opened)
            elif isinstance(command, c.CloseConnection):
                bar = bars.get(was)
                if bar is not None and bar.end is None:
                    bar.end, bar.ended = event.at, f"closed by livestate {command.code}"
            elif (
                marker := _marker(command, event.at, was if isinstance(command, c.TurnAborted) else current)
            ) is not None:
                markers.append(marker)
        after = session.state
        if after in LIVE and before not in LIVE:
            bar = bars.get(current)
            if bar is not None and bar.live_at is None:
                bar.live_at = event.at
            if left_live is not None:
                gaps.append(Gap(left_live, event.at))
                left_live = None
        elif before in LIVE and after not in LIVE:
            left_live = event.at
    if left_live is not None and left_live < last and session.state not in TERMINAL:
        gaps.append(Gap(left_live, last))
    return Layout(tuple(bars[n] for n in sorted(bars)), tuple(markers), tuple(gaps), first or 0.0, last)


# --- drawing ----------------------------------------------------------------------------------------------

_WIDTH = 1000
_LEFT = 150  # room for the lane labels
_RIGHT = 30
_TOP = 64  # title and legend
_LANE = 34
_BAR = 14
_COLORS = {
    "goaway": "#bf8700",
    "tool_call": "#8250df",
    "resumed": "#1a7f37",
    "fresh": "#cf222e",
    "handed_back": "#cf222e",
    "turn_aborted": "#9a6700",
    "failed": "#82071e",
}
_LEGEND = (
    ("goaway", "goAway"),
    ("tool_call", "tool call"),
    ("resumed", "resumed (replayed n)"),
    ("fresh", "fresh session"),
    ("handed_back", "handed back"),
    ("turn_aborted", "turn cut"),
)


def _glyph(kind: str, x: float, y: float) -> str:
    color = _COLORS[kind]
    if kind == "goaway":
        return f'<path d="M{x:.1f},{y - 7:.1f} l-6,-9 h12 z" fill="{color}"/>'
    if kind == "tool_call":
        return f'<circle cx="{x:.1f}" cy="{y - 11:.1f}" r="4.5" fill="{color}"/>'
    if kind in ("resumed", "fresh"):
        return f'<path d="M{x:.1f},{y - 16:.1f} v16" stroke="{color}" stroke-width="3"/>'
    if kind == "handed_back":
        return f'<rect x="{x - 4:.1f}" y="{y + _BAR / 2 + 1:.1f}" width="8" height="8" fill="{color}"/>'
    if kind == "turn_aborted":
        return (
            f'<path d="M{x - 5:.1f},{y - 14:.1f} l10,10 m0,-10 l-10,10" stroke="{color}" stroke-width="2.5"/>'
        )
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="7" fill="{color}"/>'


def _ticks(span: float) -> float:
    """A round tick step giving about 5 to 12 ticks over ``span`` seconds."""
    step = 0.001
    while span / step > 12:
        for factor in (2, 2.5, 2):
            step *= factor
            if span / step <= 12:
                break
    return step


def render_svg(config: SessionConfig, events: Iterable[Event], *, title: str = "livestate session") -> str:
    """The session's timeline as a standalone SVG document (text). One ``<rect class="connection">`` per
    connection; every element carries a ``<title>`` shown on hover."""
    lay = layout(config, events)
    span = max(lay.end - lay.start, 1e-3)
    scale = (_WIDTH - _LEFT - _RIGHT) / span
    lanes = max(len(lay.bars), 1)
    axis_y = _TOP + lanes * _LANE + 10
    height = axis_y + 40
    row = {bar.connection: i for i, bar in enumerate(lay.bars)}

    def x(at: float) -> float:
        return _LEFT + (at - lay.start) * scale

    def y(connection: int) -> float:
        return _TOP + row.get(connection, 0) * _LANE + _LANE / 2

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height:.0f}" '
        f'viewBox="0 0 {_WIDTH} {height:.0f}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{_WIDTH}" height="{height:.0f}" fill="white"/>',
        f'<text x="10" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
        f'<text x="{_WIDTH - _RIGHT}" y="20" text-anchor="end">{len(lay.bars)} connections, '
        f"{len(lay.gaps)} gaps, {span:.3f} s</text>",
    ]
    legend_x = 10.0
    for kind, text in _LEGEND:
        # The handed-back square hangs below its anchor (under a bar): lift it to the legend's line.
        parts.append(_glyph(kind, legend_x + 6, 37 - _BAR / 2 if kind == "handed_back" else 50))
        parts.append(f'<text x="{legend_x + 14:.1f}" y="46">{escape(text)}</text>')
        legend_x += 24 + 6.5 * len(text)
    for gap in lay.gaps:
        width = max(x(gap.end) - x(gap.start), 1.0)
        parts.append(
            f'<rect class="gap" x="{x(gap.start):.1f}" y="{_TOP - 4}" width="{width:.1f}" '
            f'height="{lanes * _LANE + 8}" fill="#ffebe9" stroke="#ff8182" stroke-dasharray="3,2">'
            f"<title>gap without a live connection: {(gap.end - gap.start) * 1000:.0f} ms</title></rect>"
        )
        parts.append(
            f'<text x="{(x(gap.start) + x(gap.end)) / 2:.1f}" y="{axis_y - 2}" text-anchor="middle" '
            f'fill="#cf222e">{(gap.end - gap.start) * 1000:.0f} ms</text>'
        )
    for bar in lay.bars:
        mid, end = y(bar.connection), bar.end if bar.end is not None else lay.end
        parts.append(
            f'<text x="{_LEFT - 8}" y="{mid + 4:.1f}" text-anchor="end">connection {bar.connection} '
            f"({escape(bar.opened.split()[0])})</text>"
        )
        t0 = lay.start
        live = "never live" if bar.live_at is None else f"live at {bar.live_at - t0:.3f} s"
        detail = f"connection {bar.connection}: {bar.opened}; opened at {bar.start - t0:.3f} s, {live}"
        detail += f", ended at {end - t0:.3f} s ({bar.ended})" if bar.ended else ", open at the end"
        parts.append(
            f'<rect class="connection" data-connection="{bar.connection}" x="{x(bar.start):.1f}" '
            f'y="{mid - _BAR / 2:.1f}" width="{max(x(end) - x(bar.start), 1.0):.1f}" height="{_BAR}" '
            f'rx="3" fill="#dafbe1" stroke="#1a7f37"><title>{escape(detail)}</title></rect>'
        )
        if bar.live_at is not None:
            parts.append(
                f'<rect x="{x(bar.live_at):.1f}" y="{mid - _BAR / 2:.1f}" '
                f'width="{max(x(end) - x(bar.live_at), 1.0):.1f}" height="{_BAR}" rx="3" fill="#4ac26b"/>'
            )
    for marker in lay.markers:
        mx, my = x(marker.at), y(marker.connection)
        parts.append(
            f"<g class={quoteattr('marker ' + marker.kind)}><title>{escape(f'{marker.at - lay.start:.3f} s: {marker.label}')}</title>"
            + _glyph(marker.kind, mx, my)
            + "</g>"
        )
        if marker.count is not None:
            text = f"{'↩' if marker.kind == 'handed_back' else '↻'}{marker.count}"
            parts.append(
                f'<text x="{mx + 3:.1f}" y="{my + (_BAR if marker.kind == "handed_back" else -9):.1f}" '
                f'fill="{_COLORS[marker.kind]}">{escape(text)}</text>'
            )
    parts.append(f'<line x1="{_LEFT}" y1="{axis_y}" x2="{_WIDTH - _RIGHT}" y2="{axis_y}" stroke="#57606a"/>')
    step = _ticks(span)
    tick = 0.0
    while tick <= span + 1e-9:
        tx = _LEFT + tick * scale
        parts.append(f'<line x1="{tx:.1f}" y1="{axis_y}" x2="{tx:.1f}" y2="{axis_y + 5}" stroke="#57606a"/>')
        parts.append(f'<text x="{tx:.1f}" y="{axis_y + 17}" text-anchor="middle">{tick:g} s</text>')
        tick += step
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
