"""OpenTelemetry metrics and traces for driver sessions (the optional extra ``otel``: opentelemetry-api only).

Off unless the application configures providers: with the API alone every call is a no-op, and without the
package a driver never builds a :class:`Telemetry` at all (``for_session`` returns ``None``), so there is no
cost. Pass ``telemetry=Telemetry(meter_provider=..., tracer_provider=...)`` to a driver to use providers other
than the global ones (tests do, with the SDK's in-memory reader and exporter).

Metrics (meter ``livestate``):

- ``livestate.reconnects`` (counter, by ``cause``: ``goaway``, ``close 1006``, ``setup timeout`` …);
- ``livestate.reconnect.gap`` (histogram, seconds without a live connection);
- ``livestate.replayed`` (histogram, messages replayed into each new connection);
- ``livestate.messages.handed_back`` (counter, ``MessagesDropped``) and ``livestate.messages.unconfirmed``
  (counter, ``MessagesUnconfirmed``);
- ``livestate.buffer.depth`` (up-down counter, messages waiting for confirmation);
- ``livestate.sessions`` (up-down counter, by ``state``).

Traces (tracer ``livestate``): a ``livestate.session`` span per session, a ``livestate.connection`` child span
per connection (attributes ``livestate.connection``, ``livestate.resume``), and ``goAway``, ``resumed`` and
``fresh_session`` span events. No handle is ever an attribute.
"""

from __future__ import annotations

from typing import Any

from livestate import commands as c
from livestate import wire
from livestate.events import Event, MessageReceived
from livestate.machine import TERMINAL, SessionState
from livestate.session import Session
from livestate.stats import StatsCollector

__all__ = ["Telemetry", "for_session"]

try:
    from opentelemetry import metrics, trace
except ImportError:  # pragma: no cover - the extra is installed in the test environment
    metrics = trace = None  # type: ignore[assignment]


class Telemetry:
    """Where a driver session's metrics and spans go: the global providers unless others are given."""

    def __init__(self, *, meter_provider: Any = None, tracer_provider: Any = None) -> None:
        if metrics is None or trace is None:  # pragma: no cover
            raise ImportError("OpenTelemetry needs the otel extra: pip install 'livestate[otel]'")
        meter = metrics.get_meter("livestate", meter_provider=meter_provider)
        self.tracer = trace.get_tracer("livestate", tracer_provider=tracer_provider)
        self.reconnects = meter.create_counter(
            "livestate.reconnects", unit="{reconnect}", description="Reconnects, by cause"
        )
        self.gap = meter.create_histogram(
            "livestate.reconnect.gap", unit="s", description="Time without a live connection"
        )
        self.replayed = meter.create_histogram(
            "livestate.replayed", unit="{message}", description="Messages replayed into a new connection"
        )
        self.handed_back = meter.create_counter(
            "livestate.messages.handed_back", unit="{message}", description="Messages never delivered"
        )
        self.unconfirmed = meter.create_counter(
            "livestate.messages.unconfirmed", unit="{message}", description="Sent, never proven consumed"
        )
        self.depth = meter.create_up_down_counter(
            "livestate.buffer.depth", unit="{message}", description="Messages waiting for confirmation"
        )
        self.sessions = meter.create_up_down_counter(
            "livestate.sessions", unit="{session}", description="Sessions, by state"
        )

    def session(self, session_id: str, session: Session) -> SessionTelemetry:
        """Start following one session."""
        return SessionTelemetry(self, session_id, session)


class SessionTelemetry:
    """One session's spans and metric updates, fed with each event and its commands."""

    def __init__(self, telemetry: Telemetry, session_id: str, session: Session) -> None:
        self._t = telemetry
        self._depth = session.unconfirmed_count
        self._span = telemetry.tracer.start_span(
            "livestate.session", attributes={"livestate.session_id": session_id}
        )
        self._connection: Any = None
        telemetry.sessions.add(1, {"state": session.state.name})
        if self._depth:
            telemetry.depth.add(self._depth)

    def observe(
        self, session: Session, event: Event, out: tuple[c.Command, ...], stats: StatsCollector
    ) -> None:
        """Account for ``event``, which ``session`` just handled, returning ``out`` (``stats`` has just observed
        the same, and says which reconnect began and which gap ended)."""
        t = self._t
        for command in out:
            if isinstance(command, c.OpenConnection | c.ReconnectWithHandle):
                self._end_connection()
                context = trace.set_span_in_context(self._span)
                self._connection = t.tracer.start_span(
                    "livestate.connection",
                    context=context,
                    attributes={
                        "livestate.connection": command.connection,
                        "livestate.resume": isinstance(command, c.ReconnectWithHandle),
                        "livestate.attempt": command.attempt,
                    },
                )
            elif isinstance(command, c.StateChanged):
                self._on_state(command, event)
            elif isinstance(command, c.Resumed):
                t.replayed.record(command.replayed)
                name = "resumed" if command.state_restored else "fresh_session"
                self._span.add_event(name, {"replayed": command.replayed, "held": command.held})
            elif isinstance(command, c.MessagesDropped):
                t.handed_back.add(command.count)
            elif isinstance(command, c.MessagesUnconfirmed):
                t.unconfirmed.add(command.count)
        if stats.reconnect is not None:
            t.reconnects.add(1, {"cause": stats.reconnect})
        if stats.closed_gap is not None:
            t.gap.record(stats.closed_gap)
        depth = session.unconfirmed_count
        if depth != self._depth:
            t.depth.add(depth - self._depth)
            self._depth = depth
        if session.state in TERMINAL:
            self._end_connection()
            self._span.end()

    def _on_state(self, change: c.StateChanged, event: Event) -> None:
        t = self._t
        t.sessions.add(-1, {"state": change.old.name})
        t.sessions.add(1, {"state": change.new.name})
        if change.new is SessionState.GOING_AWAY and isinstance(event, MessageReceived):
            left = event.message.time_left if isinstance(event.message, wire.GoAway) else None
            self._span.add_event("goAway", {"time_left": left.text if left else ""})

    def _end_connection(self) -> None:
        if self._connection is not None:
            self._connection.end()
            self._connection = None


def for_session(telemetry: Telemetry | None, session_id: str, session: Session) -> SessionTelemetry | None:
    """The telemetry of one driver session: ``telemetry``'s, the global providers' when the API is installed,
    or ``None`` (no cost at all) without it."""
    if telemetry is None:
        if metrics is None:  # pragma: no cover - the extra is installed in the test environment
            return None
        telemetry = _global()
    return telemetry.session(session_id, session)


_GLOBAL: list[Telemetry] = []


def _global() -> Telemetry:
    if not _GLOBAL:
        _GLOBAL.append(Telemetry())
    return _GLOBAL[0]
