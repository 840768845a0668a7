"""Seeing every reconnect: INFO lines with structured fields, and session statistics."""

from __future__ import annotations

import asyncio
import logging

import pytest

from livestate import Backend, Session, SessionConfig, SessionState, events, wire
from livestate.drivers.websockets import connect
from livestate.stats import StatsCollector
from livestate.testing.reference import ReferenceDriver
from livestate.testing.server import FakeLiveServer, Fault, FaultPlan

from helpers import TURN, audio, config, go_away, update

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class Counted(ReferenceDriver):
    """The reference driver, with a stats collector fed as a driver feeds it."""

    collector: StatsCollector

    def feed(self, event: events.Event) -> tuple:  # type: ignore[type-arg]
        out = super().feed(event)
        self.collector.observe(self.session, event, out)
        return out


def counted(**overrides: object) -> Counted:
    d = Counted(Session(config(**overrides)))  # type: ignore[arg-type]
    d.collector = StatsCollector()
    return d


def test_stats_count_reconnects_by_cause_gaps_and_messages() -> None:
    d = counted()
    d.live()
    d.at(1.0).server(update("h1"))
    for i in range(3):
        d.send(audio(f"a{i}"))
    d.at(2.0).server(go_away(0.0))  # a planned reconnect at once
    d.at(2.5).server(wire.SetupComplete())  # 0.5 s without a live connection
    d.at(3.0).server(update("h2"))
    d.at(4.0).close(1006)
    d.at(4.1).close(1011, "Internal error encountered.")  # the resume fails before setupComplete
    d.advance(2.0)
    d.server(wire.SetupComplete())
    stats = d.collector.snapshot(d.session)
    assert stats.reconnects == {"goaway": 1, "close 1006": 1}
    assert stats.longest_gap == pytest.approx(d.now - 4.0) and stats.last_gap == stats.longest_gap
    assert stats.sent == 3 and stats.replayed == 3 + 3 and stats.duplicates_risked == 6
    assert stats.confirmed == 0 and stats.unconfirmed == 3 and stats.handed_back == 0
    assert stats.state is SessionState.SETUP_COMPLETE and stats.state_since == d.now
    assert stats.attempts_left_in_outage == 5 - d.session.outage_attempts


def test_stats_count_confirmed_and_handed_back() -> None:
    d = counted(vertex=True)
    d.live()
    for i in range(4):
        d.send(audio(f"a{i}"))
    d.server(update("h1", index=3))
    d.server(TURN)
    d.feed(events.CloseRequested(at=d.now))
    stats = d.collector.snapshot(d.session)
    assert (stats.sent, stats.confirmed, stats.handed_back, stats.unconfirmed) == (4, 3, 1, 0)
    assert stats.duplicates_risked == 0  # transparent mode replays exactly


def test_one_info_line_per_lifecycle_fact_with_structured_fields_and_no_handle(
    caplog: pytest.LogCaptureFixture,
) -> None:
    plan = FaultPlan(
        faults=(Fault(kind="goaway", on_text="m10"), Fault(kind="drop", on_text="m30")), go_away_time_left=0.3
    )
    config = SessionConfig(
        setup=wire.Setup(model="models/fake"),
        backend=Backend.VERTEX,
        transparent=True,
        goaway_margin=0.1,
        backoff_initial=0.02,
        backoff_max=0.2,
    )

    async def main() -> tuple[dict[str, int], list[str]]:
        async with (
            FakeLiveServer(plan, vertex=True, update_every=3) as server,
            connect(server.url, config, session_id="call-42") as live,
        ):
            for i in range(45):
                await live.send(wire.RealtimeInput(text=f"m{i}"))
                await asyncio.sleep(0.01)
            await live.drain(2.0)
            handles = [h for s in server.sessions for h in s.handles]
            return live.stats.reconnects, handles

    with caplog.at_level(logging.INFO):
        reconnects, handles = asyncio.run(asyncio.wait_for(main(), 30))
    ours = [r for r in caplog.records if r.name == "livestate.driver"]
    text = [r.getMessage() for r in ours]
    assert "session call-42 connected" in text
    assert any(t.startswith("goAway: 0.3s left") for t in text)
    assert any(t.startswith("connection lost (goaway)") for t in text)
    assert any(t.startswith("connection lost (close 1006)") for t in text)
    assert sum(t.startswith("resumed, ") for t in text) == 2
    for record in ours:
        assert record.session_id == "call-42"  # type: ignore[attr-defined]
        assert isinstance(record.connection, int) and isinstance(record.attempt, int)  # type: ignore[attr-defined]
        assert record.state in SessionState.__members__  # type: ignore[attr-defined]
    assert reconnects == {"goaway": 1, "close 1006": 1}
    everything = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert handles and not any(h in everything for h in handles)
    assert not [r for r in caplog.records if r.name.startswith("transitions") and r.levelno < logging.WARNING]


def test_opentelemetry_metrics_and_spans_of_a_scripted_run() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from livestate.drivers.telemetry import Telemetry

    reader, exporter = InMemoryMetricReader(), InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry = Telemetry(
        meter_provider=MeterProvider(metric_readers=[reader]), tracer_provider=tracer_provider
    )
    plan = FaultPlan(
        faults=(Fault(kind="goaway", on_text="m10"), Fault(kind="drop", on_text="m30")), go_away_time_left=0.3
    )
    config = SessionConfig(
        setup=wire.Setup(model="models/fake"),
        backend=Backend.VERTEX,
        transparent=True,
        goaway_margin=0.1,
        backoff_initial=0.02,
        backoff_max=0.2,
    )

    async def main() -> tuple[int, int, int]:
        async with FakeLiveServer(plan, vertex=True, update_every=3) as server:
            async with connect(server.url, config, telemetry=telemetry, session_id="otel-1") as live:
                for i in range(45):
                    await live.send(wire.RealtimeInput(text=f"m{i}"))
                    await asyncio.sleep(0.01)
                await live.drain(2.0)
            stats = live.stats  # after the close, which hands back what was never confirmed
            return live.session.connection, stats.replayed, stats.handed_back

    connections, replayed, handed_back = asyncio.run(asyncio.wait_for(main(), 30))

    points: dict[str, list[object]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points[metric.name] = list(metric.data.data_points)
    reconnects = {p.attributes["cause"]: p.value for p in points["livestate.reconnects"]}  # type: ignore[attr-defined]
    assert reconnects == {"goaway": 1, "close 1006": 1}
    (gaps,) = points["livestate.reconnect.gap"]
    assert gaps.count == 2 and gaps.sum > 0  # type: ignore[attr-defined]
    (replays,) = points["livestate.replayed"]
    assert replays.count == 2 and replays.sum == replayed  # type: ignore[attr-defined]
    sessions = {p.attributes["state"]: p.value for p in points["livestate.sessions"]}  # type: ignore[attr-defined]
    assert sessions["CLOSED"] == 1 and sum(sessions.values()) == 1
    (depth,) = points["livestate.buffer.depth"]
    assert depth.value == 0  # type: ignore[attr-defined]
    assert sum(p.value for p in points.get("livestate.messages.unconfirmed", [])) == handed_back  # type: ignore[attr-defined]

    spans = exporter.get_finished_spans()
    (session_span,) = [s for s in spans if s.name == "livestate.session"]
    connection_spans = [s for s in spans if s.name == "livestate.connection"]
    assert len(connection_spans) == connections
    assert all(
        s.parent is not None and s.parent.span_id == session_span.context.span_id for s in connection_spans
    )
    names = [e.name for e in session_span.events]
    assert names.count("goAway") == 1 and names.count("resumed") == 2 and "fresh_session" not in names
    assert session_span.attributes["livestate.session_id"] == "otel-1"
