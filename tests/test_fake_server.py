"""FakeLiveServer behaves like the service where livestate's claims depend on it (a raw client, no livestate
session in between)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from livestate import wire
from livestate.testing.server import FakeLiveServer, Fault, FaultPlan, tag_of


def setup(handle: str | None = None, *, transparent: bool | None = None) -> str:
    resumption = wire.SessionResumptionConfig(handle=handle, transparent=transparent)
    return wire.encode(wire.Setup(model="models/fake", session_resumption=resumption))


async def next_update(ws: Any) -> wire.SessionResumptionUpdate:
    while True:
        message = wire.decode(await asyncio.wait_for(ws.recv(), 5))
        if isinstance(message, wire.SessionResumptionUpdate) and message.new_handle:
            return message


async def send_texts(ws: Any, *texts: str) -> None:
    for text in texts:
        await ws.send(wire.encode(wire.RealtimeInput(text=text)))


def test_updates_carry_an_index_only_for_transparent_sessions() -> None:
    async def main() -> tuple[Any, Any]:
        async with FakeLiveServer(update_every=2, index_lag=0) as server:
            results = []
            for transparent in (True, None):
                async with ws_connect(server.url) as ws:
                    await ws.send(setup(transparent=transparent))
                    assert isinstance(wire.decode(await ws.recv()), wire.SetupComplete)
                    await send_texts(ws, "a", "b")
                    results.append((await next_update(ws)).last_consumed_client_message_index)
            return results[0], results[1]

    transparent, plain = asyncio.run(asyncio.wait_for(main(), 10))
    assert transparent == 2 and plain is None


def test_resuming_from_an_older_handle_forgets_what_came_after_it() -> None:
    async def main() -> list[str]:
        async with FakeLiveServer(update_every=2, index_lag=0) as server:
            async with ws_connect(server.url) as ws:
                await ws.send(setup(transparent=True))
                await ws.recv()
                await send_texts(ws, "a", "b")
                first = (await next_update(ws)).new_handle
                await send_texts(ws, "c", "d")
                await next_update(ws)
            async with ws_connect(server.url) as ws:
                await ws.send(setup(first, transparent=True))
                assert isinstance(wire.decode(await ws.recv()), wire.SetupComplete)
                await send_texts(ws, "e")
                await asyncio.sleep(0.05)
            return server.sessions[0].conversation

    assert asyncio.run(asyncio.wait_for(main(), 10)) == ["a", "b", "e"]


@pytest.mark.parametrize("case", ["unknown handle", "old connection still open"])
def test_refused_resumes(case: str) -> None:
    async def main() -> int | None:
        async with FakeLiveServer(update_every=1) as server:
            async with ws_connect(server.url) as first:
                await first.send(setup())
                await first.recv()
                await send_texts(first, "a")
                handle = (await next_update(first)).new_handle
                async with ws_connect(server.url) as second:
                    await second.send(setup("no-such-handle" if case == "unknown handle" else handle))
                    try:
                        await asyncio.wait_for(second.recv(), 5)
                    except ConnectionClosed as closed:
                        return closed.rcvd.code if closed.rcvd else None
            return None

    code = asyncio.run(asyncio.wait_for(main(), 10))
    assert code == (1007 if case == "unknown handle" else 1011)


def test_a_scripted_1011_closes_promptly_even_while_reading_is_paused() -> None:
    # A burst of more than websockets' max_queue (16) frames pauses the server's reading; a fault that closed
    # from the read loop without reading on never saw the client's close frame and hung for close_timeout (10 s),
    # the logical session still "open" (the flaky m70… loss in test_e2e_properties).
    plan = FaultPlan(faults=(Fault(kind="error_1011", on_text="t0"),))

    async def main() -> tuple[int | None, float]:
        async with FakeLiveServer(plan) as server, ws_connect(server.url) as ws:
            await ws.send(setup())
            assert isinstance(wire.decode(await ws.recv()), wire.SetupComplete)
            started = asyncio.get_running_loop().time()
            await send_texts(ws, *(f"t{i}" for i in range(40)))  # no await yields: one burst
            await asyncio.wait_for(ws.wait_closed(), 5)
            while server.sessions[0].open_connection is not None:  # released: a resume may follow
                await asyncio.sleep(0.01)
            return ws.close_code, asyncio.get_running_loop().time() - started

    code, elapsed = asyncio.run(asyncio.wait_for(main(), 20))
    assert code == 1011 and elapsed < 1.0


async def until(condition: Any, timeout: float = 5.0) -> None:
    """Poll ``condition()`` until it is true (AssertionError after ``timeout``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "the condition did not hold in time"
        await asyncio.sleep(0.01)


def test_setups_past_answer_setups_are_held_until_released() -> None:
    async def main() -> tuple[list[Any], list[str], int]:
        async with FakeLiveServer(update_every=1, index_lag=0, answer_setups=1) as server:
            async with ws_connect(server.url) as first:
                await first.send(setup(transparent=True))
                assert isinstance(wire.decode(await first.recv()), wire.SetupComplete)
                await send_texts(first, "a")
                handle = (await next_update(first)).new_handle
            await until(lambda: server.sessions[0].open_connection is None)
            async with ws_connect(server.url) as second:
                await second.send(setup(handle, transparent=True))
                await send_texts(second, "b")  # too early (no setupComplete yet): must not reach the ledger
                await until(lambda: server.holding == 1)
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(second.recv(), 0.2)
                held_conversation = list(server.sessions[0].conversation)
                server.release_setups()
                answers = [wire.decode(await asyncio.wait_for(second.recv(), 5))]
                await send_texts(second, "c")
                await until(lambda: "c" in server.sessions[0].conversation)
            return answers, held_conversation, server.setups_held

    answers, held_conversation, held = asyncio.run(asyncio.wait_for(main(), 20))
    assert isinstance(answers[0], wire.SetupComplete)
    assert held_conversation == ["a"] and held == 1


def test_a_held_connection_whose_client_left_is_forgotten() -> None:
    async def main() -> tuple[list[str], int, int | None]:
        async with FakeLiveServer(update_every=1, index_lag=0, answer_setups=1) as server:
            async with ws_connect(server.url) as first:
                await first.send(setup(transparent=True))
                await first.recv()
                await send_texts(first, "a", "b")
                await next_update(first)
                handle = (await next_update(first)).new_handle
            await until(lambda: server.sessions[0].open_connection is None)
            async with ws_connect(server.url) as gone:
                await gone.send(setup(handle, transparent=True))
                await until(lambda: server.holding == 1)
            await until(lambda: server.holding == 0)  # the client went away while held
            server.release_setups()
            await asyncio.sleep(0.05)
            connections = server.sessions[0].connections
            async with ws_connect(server.url) as third:  # the handle still resumes: no open connection
                await third.send(setup(handle, transparent=True))
                answer = wire.decode(await asyncio.wait_for(third.recv(), 5))
                assert isinstance(answer, wire.SetupComplete)
                await send_texts(third, "c")
                await until(lambda: "c" in server.sessions[0].conversation)
            return server.sessions[0].conversation, connections, third.close_code

    conversation, connections, _ = asyncio.run(asyncio.wait_for(main(), 20))
    assert conversation == ["a", "b", "c"]
    assert connections == 1  # the forgotten connection never attached to the session


@pytest.mark.parametrize("bad", [-1, True])
def test_answer_setups_is_checked(bad: Any) -> None:
    from livestate.errors import UsageError

    with pytest.raises(UsageError, match="answer_setups"):
        FakeLiveServer(answer_setups=bad)


def test_on_consume_sees_each_client_message_with_its_connection() -> None:
    seen: list[tuple[int, str]] = []

    async def main() -> None:
        async with FakeLiveServer(
            update_every=1, on_consume=lambda n, m: seen.append((n, tag_of(m)))
        ) as server:
            total = 0
            for texts in (("a", "b"), ("c",)):
                total += len(texts)
                async with ws_connect(server.url) as ws:
                    await ws.send(setup())
                    await ws.recv()
                    await send_texts(ws, *texts)
                    await until(lambda n=total: len(seen) == n)

    asyncio.run(asyncio.wait_for(main(), 10))
    assert seen == [(1, "a"), (1, "b"), (2, "c")]
