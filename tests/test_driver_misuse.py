"""Misusing a driver fails at once with a clear UsageError; it never hangs."""

from __future__ import annotations

import asyncio

import pytest

from livestate import SessionConfig, wire
from livestate.drivers.websockets import LiveSession, connect
from livestate.errors import UsageError
from livestate.testing.server import FakeLiveServer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CONFIG = SessionConfig(setup=wire.Setup(model="models/fake"))


def test_two_tasks_iterating_one_session_is_a_usage_error() -> None:
    async def main() -> None:
        async with FakeLiveServer() as server, connect(server.url, CONFIG) as live:
            await live.wait_live(5)

            async def first() -> None:
                async for _ in live:
                    pass

            reader = asyncio.ensure_future(first())
            await asyncio.sleep(0.05)  # the first reader is waiting for an item
            with pytest.raises(UsageError, match="already iterating"):
                await live.__anext__()
            await live.close()
            await asyncio.wait_for(reader, 5)  # and the first one still ends

    asyncio.run(asyncio.wait_for(main(), 20))


def test_start_twice_is_a_usage_error() -> None:
    async def main() -> None:
        async with FakeLiveServer() as server, connect(server.url, CONFIG) as live:
            with pytest.raises(UsageError, match="already called"):
                await live.start()
            assert live.session.connection == 1  # no second connection was opened

    asyncio.run(asyncio.wait_for(main(), 20))


def test_send_wait_live_and_drain_after_close_are_usage_errors_and_close_is_idempotent() -> None:
    async def main() -> None:
        async with FakeLiveServer() as server:
            live = LiveSession(server.url, CONFIG)
            await live.start()
            await live.wait_live(5)
            await live.close()
            with pytest.raises(UsageError, match=r"send\(\) on a closed session"):
                await live.send(wire.RealtimeInput(text="late"))
            with pytest.raises(UsageError, match=r"wait_live\(\) on a closed session"):
                await live.wait_live()  # no timeout: it must not hang
            with pytest.raises(UsageError, match=r"drain\(\) on a closed session"):
                await live.drain()
            assert await live.close() == ()
            assert [item async for item in live]  # the notices of the end are still there to read

    asyncio.run(asyncio.wait_for(main(), 20))


def test_send_rejects_what_is_not_a_client_message() -> None:
    async def main() -> None:
        async with FakeLiveServer() as server, connect(server.url, CONFIG) as live:
            with pytest.raises(UsageError, match="takes a client message"):
                await live.send(wire.SetupComplete())  # type: ignore[arg-type]
            with pytest.raises(UsageError, match="takes a client message, got Setup"):
                await live.send(wire.Setup(model="x"))  # type: ignore[arg-type]

    asyncio.run(asyncio.wait_for(main(), 20))
