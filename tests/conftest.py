"""Shared test set-up: hypothesis profiles and the fixtures in ../shared/fixtures."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
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


# --- a real redis-server for the store tests (issue 15): 127.0.0.1, a free port, its own directory
@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import shutil
    import socket
    import subprocess
    import time

    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed (scripts/test.sh installs the Debian package redis-server)"
    workdir = tmp_path_factory.mktemp("redis")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = [
        binary,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(workdir),
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "yes",
        "--logfile",
        str(workdir / "redis.log"),
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            assert proc.poll() is None, (workdir / "redis.log").read_text()
            assert time.monotonic() < deadline, "redis-server did not answer within 10 s"
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(params=["sqlite", "redis"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A factory of the store under test: an SQLite file in the test's directory, or the session's real
    redis-server under a prefix of the test's own."""
    from livestate.store import SQLiteStore

    if request.param == "sqlite":
        yield lambda: SQLiteStore(tmp_path / "s.db")
    else:
        url = request.getfixturevalue("redis_url")
        from livestate.store.redis import RedisStore

        yield lambda: RedisStore.from_url(url, prefix=f"t{tmp_path.name}:")
