"""Shared test set-up: hypothesis profiles and the fixtures in ../shared/fixtures."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    print_blob=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", max_examples=5_000, stateful_step_count=80, deadline=None)
settings.register_profile("dev", max_examples=30, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


#: A copy of the project's shared fixtures, kept in the repository so the tests run anywhere;
#: test_fixtures_copy.py checks it against ../shared/fixtures when that exists.
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def load_jsonl(name: str) -> list[dict[str, Any]]:
    """The lines of one fixture file (relative to shared/fixtures)."""
    with (FIXTURES / name).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
