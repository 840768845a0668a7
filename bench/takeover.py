"""Takeover time: how long a session kept in a store waits after its worker is SIGKILLed.

For each store (SQLite in a temporary directory; Redis on its own ``redis-server`` on a free 127.0.0.1 port)
each backend and each lease TTL, N runs: a worker subprocess drives a session (``gemini``: the default
``SessionConfig``, Gemini API, handle-only, so messages sent in the last ``guard_window`` are always
unconfirmed; ``vertex``: Vertex AI, transparent, the server confirming every 50th message up to 20 behind) against a
FakeLiveServer in this process, sending a message every 5 ms; it is SIGKILLed at a random moment; a second process is started at
once with ``resume(..., wait=ttl + 5)``. Measured: kill -> the first replayed client frame the server consumes
on the resumed connection (``perf_counter`` in this process); kill -> lease acquisition and lease acquisition
-> that frame (``time.time()`` printed by the resuming process), and of the latter the part before
``resume()``'s ``async with`` is entered (the session loaded and restored; its first write goes while it
dials). Target: takeover <= lease TTL + one handshake.

    python bench/takeover.py [--runs 5] [--ttl 1.0 3.0] [--backend gemini vertex] [--redis-server PATH]

The same file is the worker:
``python bench/takeover.py _worker drive|resume SERVER_URL STORE_URL SID TTL gemini|vertex``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from livestate import Backend, SessionConfig, wire
from livestate.drivers.websockets import connect, resume
from livestate.store import StorePersistence, open_store
from livestate.testing.server import FakeLiveServer, tag_of

MODEL = "models/fake"

# --- the worker subprocess -------------------------------------------------------------------------------


def say(*words: str) -> None:
    print(*words, flush=True)


class TimedStore:
    """A store that prints the wall-clock time its lease was acquired; everything else goes to ``store``."""

    def __init__(self, store: Any) -> None:
        self._store = store

    async def acquire(self, session_id: str, owner: str, ttl: float) -> Any:
        lease = await self._store.acquire(session_id, owner, ttl)
        say("ACQUIRED", repr(time.time()))
        return lease

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


async def drive(url: str, store_url: str, sid: str, ttl: float, backend: str) -> None:
    config = SessionConfig(setup=wire.Setup(model=MODEL))
    if backend == "vertex":  # transparent: the server says which messages it consumed
        config = SessionConfig(setup=wire.Setup(model=MODEL), backend=Backend.VERTEX, transparent=True)
    persistence = StorePersistence(open_store(store_url), sid, lease_ttl=ttl)
    async with connect(url, config, store=persistence, session_id=sid) as live:
        await live.wait_live(10)
        say("LIVE")
        i = 0
        while True:
            await live.send(wire.RealtimeInput(text=f"m{i}"))
            i += 1
            await asyncio.sleep(0.005)


async def take_over(url: str, store_url: str, sid: str, ttl: float) -> None:
    say("STARTED", repr(time.time()))
    store = TimedStore(open_store(store_url))
    async with resume(url, store, sid, wait=ttl + 5.0, lease_ttl=ttl) as live:  # type: ignore[arg-type]
        say("RESUMED", repr(time.time()), str(len(live.buffer)))  # loaded, lease written, dialling
        await live.wait_live(10)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the bench is done
    say("CLOSED")


def worker(argv: list[str]) -> int:
    role, url, store_url, sid, ttl, backend = argv
    if role == "drive":
        asyncio.run(drive(url, store_url, sid, float(ttl), backend))
    else:  # the resumed session's config, backend included, comes from the store
        asyncio.run(take_over(url, store_url, sid, float(ttl)))
    return 0


# --- the bench --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def redis_server(binary: str) -> Iterator[str]:
    """A redis-server of our own on 127.0.0.1 (a free port, a temporary directory, no persistence)."""
    with tempfile.TemporaryDirectory(prefix="takeover-redis-") as workdir:
        port = free_port()
        args = [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", workdir, "--save", ""]
        args += ["--appendonly", "no", "--protected-mode", "yes", "--logfile", f"{workdir}/redis.log"]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5) as c:
                    c.sendall(b"PING\r\n")
                    if c.recv(16).startswith(b"+PONG"):
                        break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"redis-server did not start: {Path(workdir, 'redis.log').read_text()}")
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(10)


class Proc:
    """A worker subprocess and the lines it printed."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    @classmethod
    async def start(cls, *args: str) -> Proc:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "_worker",
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def line(self, word: str, timeout: float = 30.0) -> str:
        async def read() -> str:
            assert self.proc.stdout is not None
            while True:
                raw = await self.proc.stdout.readline()
                if not raw:
                    raise RuntimeError(f"the worker ended early: {self.lines[-5:]}")
                text = raw.decode().strip()
                self.lines.append(text)
                if text.split()[0] == word:
                    return text

        return await asyncio.wait_for(read(), timeout)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)


async def handshake_time(url: str) -> float:
    """Median of five WebSocket handshakes + setup/setupComplete against the fake server."""
    from websockets.asyncio.client import connect as ws_connect

    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        async with ws_connect(url) as ws:
            await ws.send(wire.encode(wire.Setup(model=MODEL)))
            await ws.recv()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


async def one_run(
    server: FakeLiveServer, firsts: dict[int, Any], store_url: str, sid: str, ttl: float, backend: str
) -> dict[str, float]:
    url = server.url
    first = await Proc.start("drive", url, store_url, sid, str(ttl), backend)
    second: Proc | None = None
    try:
        await first.line("LIVE")
        await asyncio.sleep(
            random.uniform(0.3, 0.3 + 2 * ttl)
        )  # a random moment, and a random point in the lease
        connections_at_kill = server.connections
        kill_perf, kill_wall = time.perf_counter(), time.time()
        first.kill()
        second = await Proc.start("resume", url, store_url, sid, str(ttl), backend)  # right away
        await first.proc.wait()
        store = open_store(store_url)
        try:
            stored = [tag_of(m) for _, m in await store.unconfirmed(sid)]
            info = {i.session_id: i for i in await store.list_sessions()}.get(sid)
        finally:
            await store.close()
        lease_left = info.lease_left if info is not None and info.lease_left is not None else float("nan")
        if not stored:
            raise RuntimeError("no message was unconfirmed at the kill")
        acquired = float((await second.line("ACQUIRED", ttl + 30)).split()[1])
        started = float((await second.line("RESUMED")).split()[1])
        deadline = time.monotonic() + 30
        while not any(n > connections_at_kill for n in firsts):
            if time.monotonic() > deadline:
                raise RuntimeError("no replayed frame reached the server")
            await asyncio.sleep(0.001)
        number = min(n for n in firsts if n > connections_at_kill)
        tag, frame_perf, frame_wall = firsts[number]
        if tag != stored[0]:
            raise RuntimeError(
                f"the first frame on the resumed connection is {tag}, not the replay of {stored[0]}"
            )
        # every stored message is replayed before the bench moves on
        while not set(stored) <= set(server.sessions[-1].conversation):
            if time.monotonic() > deadline:
                raise RuntimeError("the replay did not complete")
            await asyncio.sleep(0.01)
        assert second.proc.stdin is not None
        second.proc.stdin.close()
        await second.line("CLOSED")
        await asyncio.wait_for(second.proc.wait(), 10)
        return {
            "takeover": frame_perf - kill_perf,
            "kill_to_lease": acquired - kill_wall,
            "lease_to_frame": frame_wall - acquired,
            "lease_to_started": started - acquired,
            "lease_left": lease_left,
            "unconfirmed": float(len(stored)),
        }
    finally:
        first.kill()
        if second is not None:
            second.kill()


async def bench(store_url: str, ttl: float, runs: int, backend: str) -> list[dict[str, float]]:
    firsts: dict[int, tuple[str, float, float]] = {}

    def on_consume(number: int, message: wire.ClientMessage) -> None:
        if number not in firsts:
            firsts[number] = (tag_of(message), time.perf_counter(), time.time())

    results = []
    # On Vertex the server confirms every 50th message up to 20 behind, so some always wait unconfirmed.
    confirms = {"update_every": 50, "index_lag": 20} if backend == "vertex" else {}
    async with FakeLiveServer(on_consume=on_consume, vertex=backend == "vertex", **confirms) as server:
        handshake = await handshake_time(server.url)
        for run in range(runs):
            sid = f"takeover-{backend}-{ttl}-{run}-{os.getpid()}"
            result = await one_run(server, firsts, store_url, sid, ttl, backend)
            result["handshake"] = handshake
            results.append(result)
            print(
                f"  {store_url.split(':')[0]:6} {backend:6} ttl {ttl:.1f} run {run + 1}: "
                f"kill->frame {result['takeover'] * 1000:6.0f} ms, kill->lease {result['kill_to_lease'] * 1000:6.0f} ms, "
                f"lease->frame {result['lease_to_frame'] * 1000:4.0f} ms (lease->started "
                f"{result['lease_to_started'] * 1000:3.0f} ms; lease left, read after the kill, "
                f"{result['lease_left'] * 1000:4.0f} ms, {int(result['unconfirmed'])} unconfirmed)",
                flush=True,
            )
    return results


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        return worker(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--ttl", type=float, nargs="+", default=[1.0, 3.0])
    parser.add_argument(
        "--backend",
        nargs="+",
        choices=["gemini", "vertex"],
        default=["gemini", "vertex"],
        help="gemini: handle-only (the default config); vertex: transparent",
    )
    parser.add_argument("--redis-server", default=shutil.which("redis-server"), help="redis-server binary")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="takeover-") as tmp, contextlib.ExitStack() as stack:
        stores = [("sqlite", f"sqlite://{tmp}/sessions.db")]
        if args.redis_server:
            stores.append(("redis", stack.enter_context(redis_server(args.redis_server))))
        else:
            print("no redis-server: Redis skipped (--redis-server PATH)")
        for name, url in stores:
            for backend in args.backend:
                for ttl in args.ttl:
                    results = asyncio.run(bench(url, ttl, args.runs, backend))
                    rows.append((name, backend, ttl, results))
    print()
    print(
        "target: takeover (kill -> first replayed frame) <= lease TTL + one handshake; times in ms, median / max"
    )
    print("(lease->started: resume() loaded and restored the session; then it dials, writes and replays)")
    head = (
        "store",
        "backend",
        "ttl s",
        "runs",
        "kill->frame",
        "kill->lease",
        "lease->frame",
        "lease->started",
    )
    head += ("handshake", "target", "met")
    table = [head]
    keys = ("takeover", "kill_to_lease", "lease_to_frame", "lease_to_started")
    for name, backend, ttl, results in rows:
        ms = {k: [r[k] * 1000 for r in results] for k in keys}
        handshake = results[0]["handshake"] * 1000
        target = ttl * 1000 + handshake
        cells = [f"{statistics.median(v):.0f} / {max(v):.0f}" for v in ms.values()]
        met = "yes" if max(ms["takeover"]) <= target else "no"
        table.append(
            (name, backend, f"{ttl:.1f}", str(len(results)), *cells, f"{handshake:.1f}", f"{target:.0f}", met)
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for row in table:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
