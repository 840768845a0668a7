"""A server that sends its close frame but keeps the TCP connection open must not hold the session.

websockets waits for the server to end TCP after a close frame; only a sending task bounds that wait by
``close_timeout``. The driver's reader alone would wait for the keepalive to fail (80 s with the driver's
defaults; forever with ``ping_interval=None``, as here), and the session would not reconnect meanwhile.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct

from livestate import SessionConfig, wire
from livestate.drivers.websockets import connect

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _frame(opcode: int, payload: bytes) -> bytes:
    assert len(payload) < 126
    return bytes([0x80 | opcode, len(payload)]) + payload


class LingeringServer:
    """Answers the handshake and the setup, then sends close 1011 and keeps TCP open: every connection."""

    def __init__(self) -> None:
        self.connections = 0
        self.second = asyncio.Event()
        self._writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        if self.connections >= 2:
            self.second.set()
        request = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        await reader.read(1)  # the setup frame has started to arrive
        writer.write(_frame(0x1, b'{"setupComplete":{}}'))
        writer.write(_frame(0x8, struct.pack("!H", 1011) + b"going"))
        await writer.drain()
        await asyncio.sleep(3600)  # never end TCP

    def close(self) -> None:
        for writer in self._writers:
            writer.transport.abort()


def test_a_close_frame_without_tcp_close_ends_the_connection_after_close_timeout() -> None:
    async def main() -> tuple[dict[str, int], int]:
        server = LingeringServer()
        tcp = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        port = tcp.sockets[0].getsockname()[1]
        config = SessionConfig(setup=wire.Setup(model="models/fake"), backoff_initial=0.01, backoff_max=0.05)
        try:
            async with connect(
                f"ws://127.0.0.1:{port}", config, ping_interval=None, close_timeout=0.2
            ) as live:
                # Without a bound, the first connection never ends: the session never dials again.
                await asyncio.wait_for(server.second.wait(), 10)
                reconnects = dict(live.stats.reconnects)
        finally:
            server.close()
            tcp.close()
        return reconnects, server.connections

    reconnects, connections = asyncio.run(asyncio.wait_for(main(), 30))
    assert connections >= 2
    assert reconnects.get("close 1011", 0) >= 1  # the server's own code, not a 1006 from an abort
