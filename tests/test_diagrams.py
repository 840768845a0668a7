"""The diagrams and the README's state sections are generated from the table and must not drift."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from livestate import diagrams
from livestate.cli import main
from livestate.machine import TABLE, SessionState

ROOT = Path(__file__).resolve().parent.parent


def test_committed_diagrams_and_readme_match_the_table() -> None:
    assert diagrams.check(ROOT / "diagrams", ROOT / "README.md") == []


def test_check_command_exits_zero_when_in_sync(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["diagrams", "--check", "--dir", str(ROOT / "diagrams"), "--readme", str(ROOT / "README.md")])
        == 0
    )


def test_check_command_says_what_differs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(ROOT / "diagrams", tmp_path / "diagrams")
    readme = tmp_path / "README.md"
    readme.write_text((ROOT / "README.md").read_text())
    dot = tmp_path / "diagrams" / "session.dot"
    dot.write_text(dot.read_text().replace("GOING_AWAY", "LEAVING"))
    readme.write_text(readme.read_text().replace("| `IDLE` |", "| `NEW` |"))
    assert main(["diagrams", "--check", "--dir", str(tmp_path / "diagrams"), "--readme", str(readme)]) == 1
    err = capsys.readouterr().err
    assert "session.dot: differs from the table" in err
    assert "README.md: generated sections differ" in err
    assert main(["diagrams", "--dir", str(tmp_path / "diagrams"), "--readme", str(readme)]) == 0
    assert diagrams.check(tmp_path / "diagrams", readme) == []


def test_every_state_and_every_trigger_appears_in_both_diagrams() -> None:
    mermaid, dot = diagrams.mermaid(), diagrams.render_dot()
    for state in SessionState:
        assert state.name in mermaid and state.name in dot
    for row in TABLE:
        assert row.trigger in mermaid and row.trigger in dot
        for condition in row.conditions:
            assert f"[{condition}]" in mermaid


def test_output_does_not_depend_on_the_hash_seed() -> None:
    code = "from livestate import diagrams; print(diagrams.mermaid() + diagrams.render_dot())"
    outputs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        outputs.add(
            subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            ).stdout
        )
    assert len(outputs) == 1


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot is not installed")
def test_the_svg_renders_every_state() -> None:
    svg = (ROOT / "diagrams" / "session.svg").read_text()
    assert svg.lstrip().startswith("<?xml") or "<svg" in svg[:500]
    for state in SessionState:
        assert f">{state.name}<" in svg


def test_mermaid_is_what_mermaid_parses_and_holds_every_row() -> None:
    """Written straight from the table: a `title:` front matter, lowercase `class` statements, no graphviz
    layout attributes, and every row of the table as an edge carrying its trigger (and conditions)."""
    source = diagrams.mermaid()
    assert source.startswith("---\ntitle: livestate session lifecycle\n---\nstateDiagram-v2\n")
    assert "  Class " not in source
    assert "  class CLOSED,FAILED terminal" in source
    for graphviz_only in ("nodesep", "ranksep", "rankdir", "fontname"):
        assert graphviz_only not in source
    edges = [
        line.strip() for line in source.splitlines() if " --> " in line and not line.strip().startswith("[*]")
    ]
    for row in TABLE:
        label = row.trigger + (f" [{' & '.join(row.conditions)}]" if row.conditions else "")
        for state in row.sources:
            dest = (row.dest or state).name
            assert any(
                e.startswith(f"{state.name} --> {dest}: ") and label in e.split(": ", 1)[1].split(" | ")
                for e in edges
            ), (state.name, label)
