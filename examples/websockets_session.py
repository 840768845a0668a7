"""A Live session over the websockets driver: the real Gemini API when GEMINI_API_KEY is set, otherwise the
embedded FakeLiveServer (with a goAway and a drop, to show the resumes).

    python examples/websockets_session.py
"""

from __future__ import annotations

import asyncio
import os

import attrs

from livestate import SessionConfig, commands, wire
from livestate.drivers.websockets import GEMINI_API_URL, connect
from livestate.testing.server import FakeLiveServer, Fault, FaultPlan

MODEL = "models/gemini-live-2.5-flash-preview"


async def converse(url: str, headers: dict[str, str], config: SessionConfig) -> None:
    async with connect(url, config, headers=headers) as live:

        async def show() -> None:
            async for item in live:
                if isinstance(item, commands.StateChanged):
                    print(f"{live.now():6.2f}s  {item.old.name} -> {item.new.name}")
                elif isinstance(item, commands.Notice):
                    print(f"{live.now():6.2f}s  {item}")
                elif isinstance(item, wire.ServerContent) and item.output_transcription:
                    print(f"{live.now():6.2f}s  model: {item.output_transcription.text}")

        shower = asyncio.ensure_future(show())
        for i in range(40):
            await live.send(wire.RealtimeInput(text=f"message {i}" + ("?" if i % 10 == 9 else "")))
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
    await shower


async def main() -> None:
    key = os.environ.get("GEMINI_API_KEY")
    config = SessionConfig(
        setup=wire.Setup(model=MODEL, extra={"generationConfig": {"responseModalities": ["TEXT"]}})
    )
    if key:
        await converse(GEMINI_API_URL, {"x-goog-api-key": key}, config)
        return
    # Against the fake server, time is compressed: the defaults suit the real service's minutes.
    config = attrs.evolve(config, guard_window=0.2, healthy_after=1.0, backoff_initial=0.05)
    plan = FaultPlan(
        faults=(Fault(kind="goaway", on_text="message 12"), Fault(kind="drop", on_text="message 25"))
    )
    async with FakeLiveServer(plan) as server:
        await converse(server.url, {}, config)


if __name__ == "__main__":
    asyncio.run(main())
