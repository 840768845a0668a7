"""The examples run against the embedded fake server (no GEMINI_API_KEY) and show their resumes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("name", ["websockets_session.py", "genai_session.py"])
def test_example_runs_and_resumes(name: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GEMINI_API_KEY"}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    )
    assert "Resumed(state_restored=True" in result.stdout
    assert result.stdout.count("RECONNECTING -> SETUP_COMPLETE") >= 2  # the goAway and the drop
    assert "-> CLOSED" in result.stdout
