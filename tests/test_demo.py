"""`livestate demo`, the README's main job, runs and proves its claim."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from livestate.errors import UsageError
from livestate.testing import demo
from livestate.testing.server import Fault


def bars(svg: Path) -> int:
    root = ET.fromstring(svg.read_text())
    return sum(1 for e in root.iter("{http://www.w3.org/2000/svg}rect") if e.get("class") == "connection")


def test_the_demo_loses_nothing_and_says_so(tmp_path: Path) -> None:
    out = io.StringIO()
    assert demo.main(out, demo.Options(timeline=tmp_path)) == 0
    text = out.getvalue()
    assert "nothing lost." in text
    rows = [line for line in text.splitlines() if "exactly once" in line and line.strip()[0].isalpha()]
    vertex = rows[-1].split()
    # backend name (5 words), sent, consumed, lost, handed back*, duplicated, ...
    sent, consumed, lost, handed_back, duplicated = (int(x) for x in vertex[5:10])
    assert lost == 0 and duplicated == 0
    assert consumed + handed_back >= sent  # a message can be both: consumed, then handed back unconfirmed
    # The timeline beside each journal: one bar per connection (the first, then one per reconnect).
    gemini = next(
        line for line in text.splitlines() if "at least once)" in line and line.startswith("  G")
    ).split()
    assert bars(tmp_path / "vertex.svg") == int(vertex[10]) + 1
    assert bars(tmp_path / "gemini.svg") == int(gemini[11]) + 1
    assert int(vertex[10]) >= 4  # goAway, drop, rejected resume, age limit: the faults happened
    for event in (
        "goAway",
        "toolCall",
        "Resumed(state_restored=False",
        "ToolCallsOrphaned",
        "TurnAborted",
        "resume REJECTED: connection",
        "connection lost: connection",
    ):
        assert event in text


def test_faults_syntax() -> None:
    assert demo.parse_faults("goaway@59, reject@200,none") == (
        Fault(kind="goaway", on_text="m59?"),
        Fault(kind="reject_next_resume", on_text="m200"),
        Fault(kind="drop", on_text="m200"),
    )
    assert demo.parse_faults("drop@120") == (Fault(kind="drop", on_text="tool:weather"),)
    assert demo.parse_faults("none") == ()
    for bad in ("goaway", "boom@3", "drop@x", "drop@-1"):
        with pytest.raises(UsageError, match="bad fault"):
            demo.parse_faults(bad)
    assert demo.Options().faults == demo.parse_faults(demo.DEFAULT_FAULTS)
