"""Reconnect latency and throughput on loopback: the websockets driver against FakeLiveServer.

Usage: python bench/reconnect.py [--rounds N]

Latency: from the reconnect decision (the goAway drain) to the first replayed frame arriving at the server,
split into the WebSocket handshake (TCP + HTTP upgrade), the server's setupComplete round trip, and
livestate's own time (deciding, replaying). Throughput: client messages per second through driver and server.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from typing import Any

from livestate import Backend, SessionConfig, commands, events, wire
from livestate.drivers.websockets import connect
from livestate.testing.server import FakeLiveServer, Fault, FaultPlan


def config() -> SessionConfig:
    return SessionConfig(
        setup=wire.Setup(model="models/bench"), backend=Backend.VERTEX, transparent=True, goaway_margin=0.0
    )


async def one_reconnect() -> dict[str, float]:
    marks: dict[str, float] = {}
    _replay_times.clear()

    def on_command(command: commands.Command) -> None:
        now = time.perf_counter()
        if isinstance(command, commands.ReconnectWithHandle):
            marks.setdefault("decision", now)
        elif isinstance(command, commands.ReplayBuffered) and "decision" in marks:
            marks.setdefault("replay_command", now)

    def on_event(event: events.Event) -> None:
        now = time.perf_counter()
        if "decision" not in marks:
            return
        if isinstance(event, events.ConnectionOpened):
            marks.setdefault("opened", now)
        elif isinstance(event, events.MessageReceived) and isinstance(event.message, wire.SetupComplete):
            marks.setdefault("setup_complete", now)

    plan = FaultPlan(faults=(Fault(kind="goaway", on_text="go"),), go_away_time_left=5.0)
    server_cm = FakeLiveServer(plan, update_every=5, index_lag=3)
    async with (
        server_cm as server,
        connect(server.url, config(), journal=on_event, on_command=on_command) as live,
    ):
        await live.wait_live(5)
        # a handle, then unconsumed messages for the replay, then the goAway trigger at a safe point
        for i in range(5):
            await live.send(wire.RealtimeInput(text=f"pre{i}"))
        await asyncio.sleep(0.01)
        await live.send(wire.RealtimeInput(text="go"))
        for _ in range(500):
            conversation = server.sessions[0].conversation if server.sessions else []
            if "replay_command" in marks and _replay_times and len(conversation) >= 6:
                break
            await asyncio.sleep(0.001)
        first_replayed_at = _replay_times[-1]
    t0 = marks["decision"]
    return {
        "close old + handshake (TCP, WebSocket upgrade)": marks["opened"] - t0,
        "server setupComplete round trip": marks["setup_complete"] - marks["opened"],
        "livestate: setupComplete -> replay command": marks["replay_command"] - marks["setup_complete"],
        "replay command -> frame at server (write, loopback)": first_replayed_at - marks["replay_command"],
        "total: decision -> first replayed frame": first_replayed_at - t0,
    }


_replay_times: list[float] = []


async def throughput(count: int) -> float:
    async with FakeLiveServer(update_every=50) as server, connect(server.url, config()) as live:
        await live.wait_live(5)
        start = time.perf_counter()
        for i in range(count):
            await live.send(wire.RealtimeInput(text=f"t{i}"))
        while len(server.sessions[0].conversation) < count:
            await asyncio.sleep(0.001)
        return count / (time.perf_counter() - start)


def _patch_server_clock() -> None:
    """Record, in perf_counter time, when the server receives the first message of its second connection."""
    from livestate.testing import server as server_module

    original = server_module._Connection._consume

    async def consume(self: Any, message: Any, now: float) -> None:
        if self.number == 2 and not self.received:
            _replay_times.append(time.perf_counter())
        await original(self, message, now)

    server_module._Connection._consume = consume  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--messages", type=int, default=20_000)
    args = parser.parse_args()
    _patch_server_clock()
    runs = [asyncio.run(one_reconnect()) for _ in range(args.rounds)]
    print(f"python {sys.version.split()[0]}; {args.rounds} reconnects on loopback; median and best, in ms")
    for key in runs[0]:
        values = [r[key] * 1000 for r in runs]
        print(f"  {key:48} median {statistics.median(values):7.3f}   best {min(values):7.3f}")
    rate = asyncio.run(throughput(args.messages))
    print(f"  throughput through driver and server: {rate:,.0f} messages/s ({args.messages} messages)")


if __name__ == "__main__":
    main()
