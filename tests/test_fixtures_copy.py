"""The repository's copy of the shared fixtures must not drift from ../shared/fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import FIXTURES

SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


@pytest.mark.skipif(not SHARED.is_dir(), reason="no ../shared/fixtures beside this checkout")
def test_copy_matches_shared() -> None:
    shared = sorted(p.relative_to(SHARED) for p in SHARED.rglob("*") if p.is_file())
    ours = sorted(p.relative_to(FIXTURES) for p in FIXTURES.rglob("*") if p.is_file())
    assert ours == shared
    for rel in shared:
        assert (FIXTURES / rel).read_bytes() == (SHARED / rel).read_bytes(), rel
