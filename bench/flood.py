"""Memory under floods: is every queue bounded, and is anything lost to keep it so?

Three floods, each against a server on 127.0.0.1, with the driver's defaults:

1. the server stops reading: the application keeps sending 1 KiB messages;
2. the application stops iterating: the server streams a 20,000-frame reply;
3. the server never confirms (no resumption update): the application keeps sending.

For each: how many sends completed in the time given, the peak lengths of the driver's queues and of the
replay buffer, the Python heap peak (tracemalloc) and the process's peak RSS growth. Run:
``python bench/flood.py [--seconds 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import resource
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

from livestate import Backend, SessionConfig, wire
from livestate.drivers.websockets import LiveSession, connect
from livestate.testing.server import FakeLiveServer

CHATTER = 20_000
KIB = base64.b64encode(bytes(768)).decode()  # 1 KiB of base64 text
CONFIG = SessionConfig(setup=wire.Setup(model="models/fake"), backend=Backend.VERTEX, transparent=True)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _deaf_server(ws: ServerConnection) -> None:
    """Completes setup, then never reads again."""
    await ws.recv()
    await ws.send(wire.encode(wire.SetupComplete()))
    await ws.wait_closed()  # websockets stops reading once its queue of 16 is full: TCP backs up


class Peaks:
    def __init__(self) -> None:
        self.items = self.outgoing = self.buffer = 0

    def sample(self, live: LiveSession) -> None:
        self.items = max(self.items, live.queued_items)
        link = live._link
        self.outgoing = max(self.outgoing, link.outgoing.qsize() if link is not None else 0)
        self.buffer = max(self.buffer, len(live.buffer))


async def _sender(live: LiveSession, sent: list[int]) -> None:
    while True:
        data = f"{sent[0]:08d}" + KIB[8:]  # a string of its own per message, as real audio is
        await live.send(wire.RealtimeInput(audio=wire.Blob(mime_type="audio/pcm;rate=16000", data=data)))
        sent[0] += 1


async def _watch(live: LiveSession, peaks: Peaks, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        peaks.sample(live)
        await asyncio.sleep(0.01)


async def server_stops_reading(seconds: float) -> dict[str, Any]:
    async with serve(_deaf_server, "127.0.0.1", 0, max_size=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", CONFIG) as live:
            await live.wait_live(5)
            return await _flood_sends(live, seconds)


async def server_never_confirms(seconds: float) -> dict[str, Any]:
    async with FakeLiveServer(vertex=True, update_every=10**9) as server, connect(server.url, CONFIG) as live:
        await live.wait_live(5)
        return await _flood_sends(live, seconds)


async def _flood_sends(live: LiveSession, seconds: float) -> dict[str, Any]:
    sent = [0]
    peaks = Peaks()
    task = asyncio.ensure_future(_sender(live, sent))
    await _watch(live, peaks, seconds)
    task.cancel()
    handed_back = await live.close()
    return {
        "sends done": sent[0],
        "peak outgoing": peaks.outgoing,
        "peak buffer": peaks.buffer,
        "handed back at close": len(handed_back),
    }


async def _chatty_server(ws: ServerConnection) -> None:
    """Completes setup, then streams 1 KiB audio frames as fast as the client reads them."""
    await ws.recv()
    await ws.send(wire.encode(wire.SetupComplete()))
    for n in range(CHATTER):
        audio = wire.Blob(mime_type="audio/pcm;rate=24000", data=f"{n:08d}" + KIB[8:])
        await ws.send(
            wire.encode(wire.ServerContent(model_turn=wire.Content(parts=(wire.Part(inline_data=audio),))))
        )
    await ws.send(wire.encode(wire.ServerContent(turn_complete=True)))
    await ws.wait_closed()


async def application_stops_iterating(seconds: float) -> dict[str, Any]:
    async with serve(_chatty_server, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", CONFIG) as live:
            return await _stall_reader(live, seconds)


async def _stall_reader(live: LiveSession, seconds: float) -> dict[str, Any]:
    await live.wait_live(5)
    peaks = Peaks()
    await _watch(live, peaks, seconds)  # the application does not iterate meanwhile
    taken = 0
    async for item in live:
        taken += 1
        if isinstance(item, wire.ServerContent) and item.turn_complete:
            break
    return {"peak items waiting": peaks.items, "items taken after": taken}


async def measure(name: str, flood: Callable[[float], Awaitable[dict[str, Any]]], seconds: float) -> None:
    rss = _rss_mb()
    tracemalloc.start()
    figures = await flood(seconds)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    shown = ", ".join(f"{k} {v}" for k, v in figures.items())
    print(f"{name:32} {shown}; heap peak {peak / 2**20:.1f} MiB; RSS growth {_rss_mb() - rss:.1f} MiB")


async def main(seconds: float) -> None:
    print(
        f"each flood runs {seconds} s; driver defaults: max_queued_items 1024, max_outgoing 256, buffer 20,000"
    )
    await measure("server stops reading", server_stops_reading, seconds)
    await measure("application stops iterating", application_stops_iterating, seconds)
    await measure("server never confirms", server_never_confirms, seconds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    asyncio.run(main(parser.parse_args().seconds))
