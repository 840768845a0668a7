"""The frame limit at the socket: websockets refuses a frame over ``max_frame_bytes`` from its header.

A tiny Live server on 127.0.0.1 (handle-only resumption: a handle names everything received so far) sends,
mid-session, a text frame eight times the limit. It writes the frame by hand, in flow-controlled chunks of one
shared buffer, so the only place the whole frame could be buffered is the client. The client must close with
1009 and a reason naming the limit, the session must resume, and the server must end up with every message
the application sent.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import tracemalloc
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from livestate import SessionConfig, commands, events, wire
from livestate.drivers.redact import SecretFilter
from livestate.drivers.websockets import LiveSession, connect
from livestate.policy import DEFAULT_CLOSE_RULES, CloseAction, classify_close

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

LIMIT = wire.DEFAULT_MAX_FRAME_BYTES  # 1 MiB, SessionConfig's default
OVERSIZED = 8 * LIMIT
TRIGGER = "m15"  # the server answers this message with the oversized frame
CHUNK = b"x" * 65536
HIGH_WATER = 256 * 1024  # the server's write buffer stays under this (plus one chunk)

FAST: dict[str, Any] = {
    "backoff_initial": 0.02,
    "backoff_max": 0.2,
    "setup_timeout": 5.0,
    "guard_window": 0.1,
    "healthy_after": 0.5,
}


class OversizingServer:
    """Handle-only Live server that sends one oversized frame after ``TRIGGER`` on its first connection."""

    def __init__(self) -> None:
        self.snapshots: dict[str, tuple[str, ...]] = {}
        self.conversations: list[list[str]] = []
        #: The close code each connection received from the client.
        self.close_codes: list[int | None] = []
        self.oversized_bytes_written = 0
        self._handles = itertools.count(1)
        self._oversized_sent = False

    async def handler(self, ws: ServerConnection) -> None:
        setup = json.loads(await ws.recv())["setup"]
        handle = (setup.get("sessionResumption") or {}).get("handle")
        if handle is not None and handle not in self.snapshots:
            await ws.close(1007, "Request contains an invalid argument.")
            return
        conversation = list(self.snapshots[handle]) if handle else []
        self.conversations.append(conversation)
        await ws.send(json.dumps({"setupComplete": {}}))
        consuming = True
        try:
            async for raw in ws:
                if not consuming:
                    continue  # after the oversized frame this connection is broken: nothing is consumed
                text = json.loads(raw)["realtimeInput"]["text"]
                conversation.append(text)
                new = f"mini-handle-{next(self._handles)}"
                self.snapshots[new] = tuple(conversation)
                await ws.send(json.dumps({"sessionResumptionUpdate": {"newHandle": new, "resumable": True}}))
                if text == TRIGGER and not self._oversized_sent:
                    self._oversized_sent = True
                    consuming = False
                    await self._send_oversized(ws)
        except ConnectionClosed:
            pass
        self.close_codes.append(ws.close_code)

    async def _send_oversized(self, ws: ServerConnection) -> None:
        """A text frame of ``OVERSIZED`` bytes, header first, then the payload until the client gives up."""
        transport = ws.transport
        transport.write(bytes([0x81, 127]) + OVERSIZED.to_bytes(8, "big"))  # FIN + text, 64-bit length
        for _ in range(OVERSIZED // len(CHUNK)):
            for _ in range(2000):  # flow control, bounded: wait for the client to read
                if transport.get_write_buffer_size() <= HIGH_WATER or ws.protocol.state is not State.OPEN:
                    break
                await asyncio.sleep(0.001)
            if ws.protocol.state is not State.OPEN or transport.is_closing():
                return  # the client's close frame arrived: it refused the frame
            transport.write(CHUNK)
            self.oversized_bytes_written += len(CHUNK)
            await asyncio.sleep(0)


def test_1009_is_retried_by_the_default_rules() -> None:
    """1009 (message too big) is not in the table, so it is retried: the session resumes with its handle."""
    assert not any(rule.code == 1009 for rule in DEFAULT_CLOSE_RULES)
    reason = f"frame over max_frame_bytes: frame with {OVERSIZED} bytes exceeds limit of {LIMIT} bytes"
    assert classify_close(DEFAULT_CLOSE_RULES, 1009, reason) is CloseAction.RETRY


def test_the_limit_goes_to_websockets_unless_overridden() -> None:
    async def main() -> None:
        config = SessionConfig(setup=wire.Setup(model="m"), max_frame_bytes=12345)
        assert LiveSession("ws://127.0.0.1:9", config)._ws_options["max_size"] == 12345
        assert LiveSession("ws://127.0.0.1:9", config, max_size=None)._ws_options["max_size"] is None
        given = LiveSession("ws://127.0.0.1:9", config)._ws_options["logger"]
        assert given.name == "websockets.client.livestate"
        assert any(isinstance(f, SecretFilter) for f in given.filters)
        mine = LiveSession("ws://127.0.0.1:9", config, logger=logging.getLogger("app.ws"))
        assert mine._ws_options["logger"].name == "app.ws.livestate"

    asyncio.run(main())


def test_an_oversized_frame_is_refused_at_the_socket_and_the_session_resumes() -> None:
    server = OversizingServer()
    journal: list[events.Event] = []
    items: list[Any] = []
    sent: list[str] = []

    async def main() -> int:
        async with serve(server.handler, "127.0.0.1", 0, max_size=None, ping_interval=None) as ws_server:
            port = next(iter(ws_server.sockets)).getsockname()[1]
            config = SessionConfig(setup=wire.Setup(model="models/fake"), **FAST)
            assert config.max_frame_bytes == LIMIT
            tracemalloc.start()
            try:
                tracemalloc.reset_peak()
                baseline = tracemalloc.get_traced_memory()[0]
                async with connect(f"ws://127.0.0.1:{port}", config, journal=journal.append) as live:

                    async def read() -> None:
                        async for item in live:
                            items.append(item)

                    reader = asyncio.ensure_future(read())
                    for i in range(40):
                        sent.append(f"m{i}")
                        await live.send(wire.RealtimeInput(text=f"m{i}"))
                        await asyncio.sleep(0.005)
                    for _ in range(500):  # bounded: until the last conversation holds everything
                        if len(server.conversations) >= 2 and set(sent) <= set(server.conversations[-1]):
                            break
                        await asyncio.sleep(0.01)
                await asyncio.wait_for(reader, 5)
                peak = tracemalloc.get_traced_memory()[1] - baseline
            finally:
                tracemalloc.stop()
            return peak

    peak = asyncio.run(asyncio.wait_for(main(), 60))
    print(
        f"client peak over baseline: {peak} bytes; server wrote {server.oversized_bytes_written} payload bytes"
    )

    # The client refused the frame with 1009, and the session saw that close with a reason naming the limit.
    assert server.close_codes[0] == 1009
    (refused,) = [e for e in journal if isinstance(e, events.ConnectionClosed) and e.code == 1009]
    assert "max_frame_bytes" in refused.reason and f"limit of {LIMIT} bytes" in refused.reason
    # It was never buffered whole: the client's peak allocation stayed far below the frame's size.
    assert peak < OVERSIZED // 4, (peak, server.oversized_bytes_written)
    # It was treated as transient: the session resumed with its handle and lost nothing.
    resumed = [i for i in items if isinstance(i, commands.Resumed)]
    assert resumed and resumed[0].state_restored
    assert len(server.conversations) >= 2
    assert set(sent) <= set(server.conversations[-1])
    assert not [i for i in items if isinstance(i, commands.SessionFailed)]
    # Handle-only mode keeps what the last handle may not cover; only that is reported at the close.
    dropped = [i for i in items if isinstance(i, commands.MessagesDropped)]
    assert all(d.reason == "unconfirmed when the session closed" for d in dropped)
