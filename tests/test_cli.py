"""The ``livestate`` command: version, plain help, diagrams' output and skip reason, missing extras."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from livestate import __version__, diagrams
from livestate.cli import main, missing_extra


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"livestate {__version__}"


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"], ["timeline", "--help"]])
def test_help_is_plain_text(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(argv)
    text = capsys.readouterr().out
    assert "``" not in text and ":class:" not in text and ":func:" not in text
    assert "usage: livestate" in text


def test_demo_help_documents_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    text = capsys.readouterr().out
    for option in ("--seed", "--backend", "--messages", "--faults", "--timeline", "goaway@59", "fake"):
        assert option in text


def test_demo_rejects_bad_faults_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--faults", "boom@3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad fault 'boom@3'" in err


def test_diagrams_write_where_told_and_say_why_the_svg_was_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.md").write_text("<!-- diagram:begin -->\n<!-- diagram:end -->\n")
    monkeypatch.setattr(diagrams.shutil, "which", lambda name: None)
    assert main(["diagrams", "--out", "pictures"]) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "pictures").iterdir()) == [
        "reconnect.mmd",
        "session.dot",
        "session.mmd",
    ]
    assert "skipped pictures/session.svg: Graphviz's `dot` program is not on PATH" in out
    assert "apt-get install graphviz" in out
    assert (tmp_path / "README.md").read_text() == "<!-- diagram:begin -->\n<!-- diagram:end -->\n"
    assert not (tmp_path / "diagrams").exists()


def test_missing_extra_is_one_line_with_the_install_command() -> None:
    error = ModuleNotFoundError("No module named 'websockets'", name="websockets")
    assert missing_extra("demo", error) == (
        "livestate demo needs the websockets extra (websockets is not installed): "
        "pip install 'livestate[websockets]'"
    )
    graphviz = ModuleNotFoundError("No module named 'graphviz'", name="graphviz")
    assert missing_extra("diagrams", graphviz).endswith("pip install 'livestate[diagrams]'")
    assert missing_extra("demo", ImportError("odd", name="somethingelse")) == (
        "livestate demo: cannot import somethingelse"
    )


BLOCK_WEBSOCKETS = textwrap.dedent(
    """
    import sys
    from importlib.abc import MetaPathFinder

    class Block(MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "websockets" or name.startswith("websockets."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Block())
    """
)


def test_demo_without_websockets_says_how_to_install(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(BLOCK_WEBSOCKETS)
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from livestate.cli import main; sys.exit(main(['demo']))"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "livestate demo needs the websockets extra (websockets is not installed): "
        "pip install 'livestate[websockets]'\n"
    )
