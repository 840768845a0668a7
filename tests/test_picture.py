"""The timeline picture (``livestate.picture``, ``livestate timeline``): valid SVG, one bar per connection."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from livestate import Session, SessionConfig, commands, journal, picture, wire
from livestate.cli import main
from livestate.testing.reference import ReferenceDriver

SVG = "{http://www.w3.org/2000/svg}"
CONFIG = SessionConfig(setup=wire.Setup(model="models/m"), backoff_initial=0.1)


def scripted() -> ReferenceDriver:
    """Three connections: a drop after a tool call (resumed), a goAway (resumed), a rejected resume (fails)."""
    d = ReferenceDriver(Session(CONFIG)).live()
    for i in range(3):
        d.send(wire.RealtimeInput(text=f"m{i}"))
    d.advance(1)
    d.server(wire.SessionResumptionUpdate(new_handle="secret-handle-1", resumable=True))
    d.advance(1)
    d.send(wire.RealtimeInput(text="x"))
    d.server(wire.ToolCall(function_calls=(wire.FunctionCall(id="c1", name="f", args={}),)))
    d.advance(0.5)
    d.close(1006)
    d.advance(1.0)
    d.server(wire.SetupComplete())
    d.advance(1)
    d.server(wire.GoAway(time_left=wire.Duration.from_seconds(10)))
    d.advance(1)
    d.server(wire.SessionResumptionUpdate(new_handle="secret-handle-2", resumable=True))
    d.advance(0.5)
    d.server(wire.SetupComplete())
    d.advance(1)
    d.close(1007)
    d.advance(3)
    return d


def bars(svg: str) -> list[ET.Element]:
    root = ET.fromstring(svg)
    return [e for e in root.iter(f"{SVG}rect") if e.get("class") == "connection"]


def test_layout_reads_what_happened() -> None:
    d = scripted()
    opened = d.of(commands.OpenConnection) + d.of(commands.ReconnectWithHandle)
    lay = picture.layout(CONFIG, d.events)
    assert [bar.connection for bar in lay.bars] == [1, 2, 3] == sorted(c.connection for c in opened)
    assert [bar.ended for bar in lay.bars] == ["closed 1006", "closed by livestate 1000", "closed 1007"]
    kinds = [m.kind for m in lay.markers]
    assert kinds.count("goaway") == 1 and kinds.count("tool_call") == 1 and kinds.count("failed") == 1
    assert [m.count for m in lay.markers if m.kind == "resumed"] == [
        r.replayed for r in d.of(commands.Resumed)
    ]
    assert [m.count for m in lay.markers if m.kind == "handed_back"] == [
        n.count for n in d.of(commands.MessagesUnconfirmed) + d.of(commands.MessagesDropped)
    ]
    assert len(lay.gaps) == 2  # two outages between live connections; none after the failure


def test_svg_parses_with_one_bar_per_connection_and_no_handle() -> None:
    d = scripted()
    svg = picture.render_svg(CONFIG, d.events)
    found = bars(svg)
    assert [e.get("data-connection") for e in found] == ["1", "2", "3"]
    assert "secret-handle" not in svg
    assert journal.fingerprint("secret-handle-1") in svg  # the resume says which handle, as a fingerprint


def test_timeline_command_draws_a_journal(tmp_path: Path) -> None:
    d = scripted()
    path = tmp_path / "session.jsonl"
    with journal.Journal.create(path, CONFIG) as sink:
        for event in d.events:
            sink(event)
    assert main(["timeline", str(path), "-o", str(tmp_path / "out.svg")]) == 0
    assert len(bars((tmp_path / "out.svg").read_text())) == 3
    assert main(["timeline", str(path)]) == 0  # default: beside the journal
    assert len(bars((tmp_path / "session.svg").read_text())) == 3


def test_timeline_command_reports_an_unreadable_journal(tmp_path: Path, capsys: object) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("not json\n")
    assert main(["timeline", str(path)]) == 2
    assert not (tmp_path / "bad.svg").exists()
