"""livestate for an application written on google-genai: the real Gemini API when GEMINI_API_KEY is set,
otherwise the embedded FakeLiveServer over TLS (google-genai insists on wss://), with a goAway and a drop.

    python examples/genai_session.py
"""

from __future__ import annotations

import asyncio
import os

import attrs
from google import genai
from google.genai import types

from livestate import SessionConfig, commands, wire
from livestate.drivers.genai import connect
from livestate.testing.server import FakeLiveServer, Fault, FaultPlan
from livestate.testing.tls import loopback_contexts

MODEL = "gemini-live-2.5-flash-preview"


async def converse(client: genai.Client, config: SessionConfig) -> None:
    async with connect(client, config) as live:

        async def show() -> None:
            async for item in live:
                if isinstance(item, commands.StateChanged):
                    print(f"{live.now():6.2f}s  {item.old.name} -> {item.new.name}")
                elif isinstance(item, commands.Notice):
                    print(f"{live.now():6.2f}s  {item}")

        shower = asyncio.ensure_future(show())
        for i in range(40):
            await live.send(wire.RealtimeInput(text=f"message {i}" + ("?" if i % 10 == 9 else "")))
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
    await shower


async def main() -> None:
    config = SessionConfig(
        setup=wire.Setup(model=MODEL, extra={"generationConfig": {"responseModalities": ["TEXT"]}})
    )
    key = os.environ.get("GEMINI_API_KEY")
    if key:
        await converse(genai.Client(api_key=key), config)
        return
    # A self-signed certificate for 127.0.0.1 (needs `cryptography`): the SDK insists on wss:// with a key.
    server_ssl, client_ssl = loopback_contexts()
    # Against the fake server, time is compressed: the defaults suit the real service's minutes.
    config = attrs.evolve(config, guard_window=0.2, healthy_after=1.0, backoff_initial=0.05)
    plan = FaultPlan(
        faults=(Fault(kind="goaway", on_text="message 12"), Fault(kind="drop", on_text="message 25"))
    )
    async with FakeLiveServer(plan, ssl=server_ssl) as server:
        options = types.HttpOptions(
            base_url=server.url.replace("wss://", "https://"), async_client_args={"ssl": client_ssl}
        )
        await converse(genai.Client(api_key="fake-key", http_options=options), config)


if __name__ == "__main__":
    asyncio.run(main())
