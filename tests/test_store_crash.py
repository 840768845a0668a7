"""SIGKILL a worker mid-conversation; another process resumes from the store and loses nothing (issue 15)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from livestate.store import open_store
from livestate.testing.server import FakeLiveServer

from integration_support import duplicated, lost, most_copies

WORKER = str(Path(__file__).with_name("store_worker.py"))
#: Every worker started, so a failed test kills what it left running.
STARTED: list[asyncio.subprocess.Process] = []
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class Worker:
    """A worker subprocess whose ``SENT``/``UNCONFIRMED`` lines are collected as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    @classmethod
    async def start(cls, *args: str) -> Worker:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            WORKER,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        STARTED.append(proc)
        return cls(proc)

    async def until(self, predicate: Any, timeout: float = 20.0) -> str:
        async def read() -> str:
            assert self.proc.stdout is not None
            while True:
                raw = await self.proc.stdout.readline()
                assert raw, f"the worker ended early: {self.lines[-5:]}"
                line = raw.decode().strip()
                self.lines.append(line)
                if predicate(line):
                    return line

        try:
            return await asyncio.wait_for(read(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(
                f"no such line within {timeout} s; the last ones: {self.lines[-8:]}"
            ) from None

    async def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.stdout is not None
        rest = await asyncio.wait_for(self.proc.stdout.read(), 10)
        self.lines += [line for line in rest.decode().splitlines() if line]
        await asyncio.wait_for(self.proc.wait(), 10)

    def tags(self, word: str) -> list[str]:
        return [line.split()[1] for line in self.lines if line.startswith(word + " ")]


async def crash_and_take_over(
    store_url: str, vertex: bool, sid: str
) -> tuple[FakeLiveServer, list[str], list[str], dict[str, Any]]:
    facts: dict[str, Any] = {}
    async with FakeLiveServer(vertex=vertex, update_every=6, index_lag=3, time_lag=0.05) as server:
        url = server.url
        first = await Worker.start("drive", url, store_url, sid, "1" if vertex else "0")
        await first.until(lambda line: line == "SENT a40")
        await first.kill()  # mid-conversation: no close, no release
        store = open_store(store_url)
        facts["unconfirmed_at_kill"] = len(await store.unconfirmed(sid))
        second = await Worker.start("resume", url, store_url, sid, "1" if vertex else "0", "b")
        facts["resumed"] = await second.until(lambda line: line.startswith("RESUMED"))
        await second.until(lambda line: line == "DRAINED")
        probe = await Worker.start("probe", url, store_url, sid, "1" if vertex else "0")
        facts["probe"] = await probe.until(lambda line: line.startswith(("LEASED", "TOOK")))
        facts["probe_rc"] = await asyncio.wait_for(probe.proc.wait(), 10)
        await second.kill()  # a second crash, while it holds the lease
        third = await Worker.start("resume", url, store_url, sid, "1" if vertex else "0", "c")
        await third.until(lambda line: line == "DRAINED")
        assert third.proc.stdin is not None
        third.proc.stdin.close()
        await third.until(lambda line: line == "CLOSED")
        facts["third_rc"] = await asyncio.wait_for(third.proc.wait(), 10)
        facts["left_in_store"] = [info.session_id for info in await store.list_sessions()]
        await store.close()
        workers = (first, second, third)
        sent = [tag for w in workers for tag in w.tags("SENT")]
        handed_back = [tag for w in workers for tag in w.tags("UNCONFIRMED")]
        return server, sent, handed_back, facts


@pytest.mark.parametrize("vertex", [True, False], ids=["vertex", "gemini_api"])
@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_a_killed_worker_loses_nothing_and_one_worker_holds_the_lease(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str, vertex: bool
) -> None:
    if kind == "sqlite":
        store_url = f"sqlite://{tmp_path / 'sessions.db'}"
    else:
        store_url = request.getfixturevalue("redis_url")
    sid = f"call-{tmp_path.name}"
    try:
        server, sent, handed_back, facts = asyncio.run(crash_and_take_over(store_url, vertex, sid))
    finally:
        for proc in STARTED:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
        STARTED.clear()
    assert facts["unconfirmed_at_kill"] > 0  # the kill came while messages were unconfirmed
    assert facts["probe"].startswith("LEASED") and facts["probe_rc"] == 3
    assert facts["third_rc"] == 0 and sid not in facts["left_in_store"]
    assert len(sent) > 40
    assert lost(server, [t for t in sent if t not in handed_back]) == []
    if vertex:
        assert len(server.sessions) == 1  # every takeover resumed the same conversation
        assert duplicated(server, sent) == []
        assert lost(server, sent) == []  # transparent: even what was still unconfirmed reached it once
    else:
        assert most_copies(server, sent) <= 2  # handle-only: at most one replayed copy (guard window)
