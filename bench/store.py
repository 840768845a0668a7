"""Write-ahead cost per client message for each store, against the same load without a store.

N sessions each send R messages/s for S seconds through the driver's path (``Session.send``, the replay
buffer, and with a store ``StorePersistence.observe`` + ``flush`` before the wire); the server confirms every
tenth message with a handle. Each session sends on its own clock, the sessions' phases spread evenly over one
period (as independent audio streams are): a send does not wait for the previous one's write, so sessions do
not fall into step and batches hold what the batch window gathers, not what a synchronised load would. Every
row runs once per round, rounds in turn, so a machine that drifts weighs on every row alike:

- CPU per message: the whole process (SQLite's worker thread included) and the event loop's thread alone;
  a store's cost is its figure minus the same round's baseline (median over the rounds, and the range);
- the event loop's lag (p99 of a 5 ms ticker's overshoot);
- store batches: sessions per batch and the most in flight at once (each batch is one transaction, or one
  Redis round trip);
- the write-ahead wait: from a message's send to its write done, what it waits before the wire (p50, p99).

    python bench/store.py [--sessions 100] [--rate 50] [--seconds 10] [--rounds 3] [--batch-window S]
                          [--redis URL | --redis-server PATH] [--takeover]

Without ``--redis``, a ``redis-server`` on the PATH (or ``--redis-server``) is started on a free port of
127.0.0.1 in a temporary directory and stopped after. ``--takeover`` then runs ``bench/takeover.py`` too
(the time from a worker's SIGKILL to the first replayed frame, per store and lease TTL).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any

from livestate import Backend, Session, SessionConfig, wire
from livestate.buffer import ReplayBuffer
from livestate.events import Connect, MessageReceived
from livestate.store import SQLiteStore, StorePersistence
from livestate.store.base import DEFAULT_BATCH_WINDOW


class Host:
    """A live Vertex session and its replay buffer: what a driver holds."""

    def __init__(self) -> None:
        config = SessionConfig(setup=wire.Setup(model="models/x"), backend=Backend.VERTEX, transparent=True)
        self.session = Session(config)
        self.buffer = ReplayBuffer()
        self.session.handle(Connect(at=0.0))
        self.session.handle(MessageReceived(at=0.0, message=wire.SetupComplete(), connection=1))

    async def close(self) -> None:
        return None


class Counted:
    """A store whose ``write_batch`` calls are counted, with the most in flight at once (one batch is one
    transaction or one Redis round trip; a reply takes a loop iteration of its own to arrive, so at most one
    in flight means at most one round trip started per loop iteration)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.sizes: list[int] = []
        self.in_flight = 0
        self.most_in_flight = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def write_batch(self, writes: Sequence[Any]) -> Any:
        self.sizes.append(len(writes))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await self.store.write_batch(writes)
        finally:
            self.in_flight -= 1


#: 20 ms of 16 kHz 16-bit audio (640 bytes), as base64: what a 50 messages/s stream carries.
AUDIO = wire.Blob(mime_type="audio/pcm;rate=16000", data=base64.b64encode(bytes(640)).decode())


async def run(store: Any, sessions: int, rate: float, seconds: float) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    counted = Counted(store) if store is not None else None
    hosts = [Host() for _ in range(sessions)]
    links: list[StorePersistence | None] = []
    for i, host in enumerate(hosts):
        if counted is None:
            links.append(None)
            continue
        p = StorePersistence(counted, f"bench-{i}", lease_ttl=30.0)  # type: ignore[arg-type]
        await p.start(host)
        links.append(p)
    lags: list[float] = []
    waits: list[float] = []  # from a message's send to its write-ahead done: what it waits for the wire
    sent = 0
    start = loop.time()
    stop = start + seconds

    async def ticker() -> None:
        while loop.time() < stop:
            t = loop.time()
            await asyncio.sleep(0.005)
            lags.append(loop.time() - t - 0.005)

    async def sender(host: Host, p: StorePersistence | None, k: int) -> None:
        nonlocal sent
        n = 0
        # Paced by the clock, not by sleeps after each send: every run sends the same number of messages
        # (a send that waits for its write-ahead does not push the next one back), so the fixed costs of the
        # run (the ticker, the idle loop) weigh the same per message with and without a store.
        due = start + k / sessions / rate  # the sessions spread over one period
        while due < stop:
            await asyncio.sleep(max(0.0, due - loop.time()))
            out = host.session.send(wire.RealtimeInput(audio=AUDIO), at=loop.time())
            for command in out:
                host.buffer.apply(command)
            if p is not None:
                p.observe(host.session, out)
                asked = loop.time()
                await p.flush()
                waits.append(loop.time() - asked)
            sent += 1
            n += 1
            if n % 10 == 0:  # the server confirms in batches
                update = wire.SessionResumptionUpdate(
                    new_handle=f"h{n}",
                    resumable=True,
                    last_consumed_client_message_index=wire.MessageIndex(n),
                )
                event = MessageReceived(at=loop.time(), message=update, connection=1)
                out = host.session.handle(event)
                for command in out:
                    host.buffer.apply(command)
                if p is not None:
                    p.observe(host.session, out, event)
            due += 1 / rate

    if counted is not None:
        counted.sizes.clear()
    cpu, loop_cpu = time.process_time(), time.thread_time()
    await asyncio.gather(
        ticker(), *(sender(h, p, i) for i, (h, p) in enumerate(zip(hosts, links, strict=True)))
    )
    cpu, loop_cpu = time.process_time() - cpu, time.thread_time() - loop_cpu
    for p in links:
        if p is not None:
            await p.stop()
    lags.sort()
    waits.sort()
    result = {
        "messages": float(sent),
        "cpu_us": cpu / sent * 1e6,
        "loop_cpu_us": loop_cpu / sent * 1e6,
        "lag_p99_ms": lags[int(len(lags) * 0.99)] * 1e3,
    }
    if counted is not None:
        result["batches"] = float(len(counted.sizes))
        result["sessions_per_batch"] = statistics.mean(counted.sizes) if counted.sizes else 0.0
        result["most_in_flight"] = float(counted.most_in_flight)
        result["wait_p50_ms"] = waits[len(waits) // 2] * 1e3
        result["wait_p99_ms"] = waits[int(len(waits) * 0.99)] * 1e3
    return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def redis_server(binary: str) -> Iterator[str]:
    """A throwaway redis-server on 127.0.0.1 (no persistence), its URL."""
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                tmp,
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                    break
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--redis", default=None, help="a Redis URL (else a redis-server is started)")
    parser.add_argument("--redis-server", default=shutil.which("redis-server"))
    parser.add_argument(
        "--batch-window", type=float, default=DEFAULT_BATCH_WINDOW, help="the stores' batch_window, seconds"
    )
    parser.add_argument("--rounds", type=int, default=3, help="run every row this many times, in turn")
    parser.add_argument("--takeover", action="store_true", help="then run bench/takeover.py")
    args = parser.parse_args()
    load = (args.sessions, args.rate, args.seconds)
    print(
        f"{args.sessions} sessions x {args.rate:g} messages/s for {args.seconds:g} s, 640-byte audio chunks; "
        f"batch window {args.batch_window * 1e3:g} ms; {args.rounds} rounds, each running every row in turn "
        "(the figures are medians over the rounds; +store is each round's difference from its own baseline)"
    )
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = args.redis
        if url is None and args.redis_server:
            url = stack.enter_context(redis_server(args.redis_server))

        async def sqlite_run(writer: str) -> dict[str, float]:
            store = SQLiteStore(tmp / f"{writer}.db", writer=writer, batch_window=args.batch_window)
            try:
                return await run(store, *load)
            finally:
                await store.close()
                for leftover in tmp.glob(f"{writer}.db*"):
                    leftover.unlink()

        async def redis_run() -> dict[str, float]:
            from livestate.store.redis import RedisStore

            assert url is not None
            store = RedisStore.from_url(url, prefix="bench:", batch_window=args.batch_window)
            try:
                return await run(store, *load)
            finally:
                await store.client.flushdb()
                await store.close()

        configs: list[tuple[str, Callable[[], Coroutine[Any, Any, dict[str, float]]]]] = [
            ("no store (baseline)", lambda: run(None, *load)),
            ("SQLite, on the loop (default)", lambda: sqlite_run("loop")),
            ("SQLite, worker thread", lambda: sqlite_run("thread")),
        ]
        if url is not None:
            configs.append(("Redis", redis_run))
        results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in configs}
        for _ in range(args.rounds):
            for name, start in configs:
                results[name].append(asyncio.run(start()))
    base = results["no store (baseline)"]

    def median(name: str, key: str) -> float:
        return statistics.median(r.get(key, 0.0) for r in results[name])

    def extra(name: str, key: str) -> list[float]:
        return sorted(r[key] - b[key] for r, b in zip(results[name], base, strict=True))

    print(
        f"{'':32} {'CPU/msg':>8} {'+store':>8} {'(range)':>13} {'loop/msg':>8} {'+store':>8} "
        f"{'lag p99':>8} {'per batch':>9} {'inflight':>8} {'wait p50':>8} {'wait p99':>8}"
    )
    for name in results:
        cpu, loop_cpu = extra(name, "cpu_us"), extra(name, "loop_cpu_us")
        print(
            f"{name:32} {median(name, 'cpu_us'):6.1f}us {statistics.median(cpu):6.1f}us "
            f"{f'{cpu[0]:.0f}..{cpu[-1]:.0f}us':>13} {median(name, 'loop_cpu_us'):6.1f}us "
            f"{statistics.median(loop_cpu):6.1f}us {median(name, 'lag_p99_ms'):6.1f}ms "
            f"{median(name, 'sessions_per_batch'):9.1f} {max(r.get('most_in_flight', 0) for r in results[name]):8.0f} "
            f"{median(name, 'wait_p50_ms'):6.2f}ms {median(name, 'wait_p99_ms'):6.2f}ms"
        )
    if args.takeover:
        import sys

        subprocess.run([sys.executable, str(Path(__file__).with_name("takeover.py"))], check=True)


if __name__ == "__main__":
    main()
