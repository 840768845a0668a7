"""Write-ahead cost per client message for each store: N sessions each sending R messages/s for S seconds
through ``StorePersistence`` (observe + flush, as the driver does before the wire), and the event loop's lag.

    python bench/store.py [--sessions 100] [--rate 50] [--seconds 10] [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from livestate import Backend, Session, SessionConfig, wire
from livestate.buffer import ReplayBuffer
from livestate.events import Connect, ConnectionOpened, MessageReceived
from livestate.store import SQLiteStore, StorePersistence


class Host:
    def __init__(self) -> None:
        config = SessionConfig(setup=wire.Setup(model="models/x"), backend=Backend.VERTEX, transparent=True)
        self.session = Session(config)
        self.buffer = ReplayBuffer()
        self.session.handle(Connect(at=0.0))
        self.session.handle(ConnectionOpened(at=0.0, connection=1))
        self.session.handle(MessageReceived(at=0.0, message=wire.SetupComplete(), connection=1))

    async def close(self) -> None:
        return None


async def run(store: Any, sessions: int, rate: float, seconds: float) -> dict[str, float]:
    hosts = [Host() for _ in range(sessions)]
    links = []
    for i, host in enumerate(hosts):
        p = StorePersistence(store, f"bench-{i}", lease_ttl=30.0)
        await p.start(host)
        links.append(p)
    costs: list[float] = []
    lags: list[float] = []
    loop = asyncio.get_running_loop()
    stop = loop.time() + seconds

    async def ticker() -> None:
        while loop.time() < stop:
            t = loop.time()
            await asyncio.sleep(0.005)
            lags.append(loop.time() - t - 0.005)

    async def sender(host: Host, p: StorePersistence, k: int) -> None:
        n = 0
        while loop.time() < stop:
            t0 = time.perf_counter()
            out = host.session.send(wire.RealtimeInput(text=f"m{k}-{n}"), at=loop.time())
            for command in out:
                host.buffer.apply(command)
            p.observe(host.session, out)
            await p.flush()
            costs.append(time.perf_counter() - t0)
            n += 1
            if n % 10 == 0:  # the server confirms in batches
                update = wire.SessionResumptionUpdate(
                    new_handle=f"h{n}",
                    resumable=True,
                    last_consumed_client_message_index=wire.MessageIndex(n),
                )
                out = host.session.handle(MessageReceived(at=loop.time(), message=update, connection=1))
                for command in out:
                    host.buffer.apply(command)
                p.observe(host.session, out)
            await asyncio.sleep(1 / rate)

    await asyncio.gather(
        ticker(), *(sender(h, p, i) for i, (h, p) in enumerate(zip(hosts, links, strict=True)))
    )
    for p in links:
        await p.stop()
    costs.sort()
    return {
        "messages": len(costs),
        "median_us": statistics.median(costs) * 1e6,
        "p99_us": costs[int(len(costs) * 0.99)] * 1e6,
        "lag_p99_ms": sorted(lags)[int(len(lags) * 0.99)] * 1e3 if lags else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--redis", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "bench.db")
        print("sqlite", asyncio.run(run(store, args.sessions, args.rate, args.seconds)))
    if args.redis:
        from livestate.store.redis import RedisStore

        async def redis_run() -> dict[str, float]:
            store = RedisStore.from_url(args.redis, prefix="bench:")
            try:
                return await run(store, args.sessions, args.rate, args.seconds)
            finally:
                await store.close()

        print("redis", asyncio.run(redis_run()))


if __name__ == "__main__":
    main()
