"""End to end with the configuration users run: SessionConfig's defaults, apart from the knobs that only
scale time (backoff, goAway margin, guard window, setup timeout). Real sockets on 127.0.0.1, FakeLiveServer."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from test_e2e import audit, drive

from livestate import Backend, SessionConfig, SessionState, commands, wire
from livestate.drivers.websockets import LiveSession, connect
from livestate.errors import SessionFailedError, UsageError
from livestate.testing.server import FakeLiveServer, Fault, FaultPlan

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

#: The only knobs changed: each scales time, none changes what the session does.
TIME_SCALE = {"backoff_initial": 0.02, "backoff_max": 0.2, "goaway_margin": 0.1, "guard_window": 0.1}


def default_config(vertex: bool, **time_scale: Any) -> SessionConfig:
    options: dict[str, Any] = {**TIME_SCALE, **time_scale}
    if vertex:
        options.update(backend=Backend.VERTEX, transparent=True)
    return SessionConfig(setup=wire.Setup(model="models/fake"), **options)


BACKENDS = pytest.mark.parametrize("vertex", [True, False], ids=["vertex-transparent", "gemini-handle-only"])


@BACKENDS
def test_thirty_drops_a_few_tenths_of_a_second_apart_lose_nothing_and_never_fail(vertex: bool) -> None:
    rng = random.Random(30)
    interval = 0.02  # 50 messages a second, like 20 ms audio chunks
    positions, at = [], 0
    for _ in range(30):  # a drop every 0.3-0.6 s of sending
        at += rng.randint(15, 30)
        positions.append(at)
    count = at + 20
    tags = [f"d-{p}" + ("?" if p % 25 == 24 else "") for p in positions]  # as drive() names them
    plan = FaultPlan(faults=tuple(Fault(kind="drop", on_text=tag) for tag in tags))

    async def main() -> tuple[Any, FakeLiveServer]:
        async with (
            FakeLiveServer(plan, vertex=vertex, update_every=5) as server,
            connect(server.url, default_config(vertex)) as live,
        ):
            return await drive(live, "d", count, interval=interval), server

    outcome, server = asyncio.run(asyncio.wait_for(main(), 90))
    drops = sum(1 for _, kind in server.faults_done if kind == "drop")
    unfired = [positions[i] for i in range(30) if i not in server.fired]
    assert drops == 30, unfired
    assert outcome.final_state is not SessionState.FAILED
    assert not [n for n in outcome.notices if isinstance(n, commands.SessionFailed)]
    lost, duplicated = audit(server, outcome)
    assert lost == set()
    resumes = [n for n in outcome.notices if isinstance(n, commands.Resumed)]
    assert len(resumes) >= 30
    if vertex:
        assert sum(duplicated.values()) == 0
    else:  # at least once: within the guard window, 4 a reconnect at most
        assert sum(duplicated.values()) <= 4 * len(resumes)
    print(f"{'vertex' if vertex else 'gemini'}: {count} sent, {drops} drops, {sum(duplicated.values())} dup")


@BACKENDS
def test_a_rejected_resume_mid_conversation_loses_nothing(vertex: bool) -> None:
    plan = FaultPlan(
        faults=(Fault(kind="reject_next_resume", on_text="r-60"), Fault(kind="drop", on_text="r-60"))
    )

    async def main() -> tuple[Any, FakeLiveServer]:
        async with (
            FakeLiveServer(plan, vertex=vertex, update_every=5) as server,
            connect(server.url, default_config(vertex)) as live,
        ):
            return await drive(live, "r", 120, interval=0.005), server

    outcome, server = asyncio.run(asyncio.wait_for(main(), 30))
    assert server.rejected_resumes == 1 and len(server.sessions) == 2
    fresh = [n for n in outcome.notices if isinstance(n, commands.Resumed) and not n.state_restored]
    assert len(fresh) == 1 and fresh[0].replayed > 0
    lost, _ = audit(server, outcome)
    assert lost == set()
    handed = [n for n in outcome.notices if isinstance(n, commands.MessagesDropped)]
    assert handed == []


def test_a_bad_message_fails_at_send_and_every_other_message_arrives() -> None:
    async def main() -> tuple[list[str], FakeLiveServer]:
        async with (
            FakeLiveServer(vertex=True, update_every=1, index_lag=0) as server,
            connect(server.url, default_config(True)) as live,
        ):
            await live.wait_live(5)
            sent = []
            for i in range(20):
                if i == 7:
                    bad = wire.RealtimeInput(audio=wire.Blob(mime_type="audio/pcm", data=b"\0\0"))  # type: ignore[arg-type]
                    with pytest.raises(UsageError, match="must be base64 text"):
                        await live.send(bad)
                    continue
                sent.append(f"b-{i}")
                await live.send(wire.RealtimeInput(text=f"b-{i}"))
            assert await live.drain(5) == ()
            assert await live.close() == ()
            return sent, server

    sent, server = asyncio.run(asyncio.wait_for(main(), 30))
    assert server.sessions[0].conversation == sent


@BACKENDS
def test_an_error_frame_in_answer_to_setup_fails_at_once_with_the_servers_words(vertex: bool) -> None:
    refusal = wire.ServerError(code=403, status="PERMISSION_DENIED", message="Permission denied on the model")

    async def main() -> tuple[SessionFailedError, list[Any]]:
        # The default setup timeout (15 s) is kept: only failing on the error frame can beat wait_live's 1 s.
        config = SessionConfig(setup=wire.Setup(model="models/fake"))
        async with FakeLiveServer(vertex=vertex, refuse_setup=refusal) as server:
            async with connect(server.url, config) as live:
                with pytest.raises(SessionFailedError) as failed:
                    await live.wait_live(1)
                items = [item async for item in live]
                with pytest.raises(SessionFailedError):
                    await live.send(wire.RealtimeInput(text="too late"))
            return failed.value, items

    error, items = asyncio.run(asyncio.wait_for(main(), 20))
    assert "403 PERMISSION_DENIED Permission denied on the model" in error.reason
    assert [type(i) for i in items].count(commands.SessionFailed) == 1


@pytest.mark.parametrize(
    ("make_url", "expected"),
    [
        (lambda url: url.replace("ws://", "http://"), "bad URL"),
        (
            lambda url: url,
            "HTTP 403 Forbidden at the handshake: fake server refuses the handshake with HTTP 403",
        ),
    ],
    ids=["wrong-scheme", "http-403"],
)
def test_permanent_connection_errors_fail_at_once(make_url: Any, expected: str) -> None:
    async def main() -> tuple[SessionFailedError, int]:
        config = SessionConfig(setup=wire.Setup(model="m"))
        async with (
            FakeLiveServer(handshake_status=403) as server,
            connect(make_url(server.url), config) as live,
        ):
            with pytest.raises(SessionFailedError) as failed:
                await live.wait_live(5)
            return failed.value, live.session.connection

    error, connections = asyncio.run(asyncio.wait_for(main(), 20))
    assert expected in error.reason
    assert connections == 1  # no retry


def test_an_application_that_stops_iterating_holds_back_the_reader_not_memory() -> None:
    async def main() -> tuple[int, int, int, list[int]]:
        async with (
            FakeLiveServer(vertex=True, turn_frames=3_000, frame_interval=0.0) as server,
            connect(server.url, default_config(True), max_queued_items=200) as live,
        ):
            await live.wait_live(5)
            await live.send(wire.RealtimeInput(text="talk a lot?"))  # a 3,000-frame reply
            depths = []
            for _ in range(50):  # the application does not iterate for 5 s
                await asyncio.sleep(0.1)
                depths.append(live.queued_items)
            taken = 0
            async for item in live:  # it catches up: the reader goes on where it stopped
                taken += 1
                if isinstance(item, wire.ServerContent) and item.turn_complete:
                    break
            return max(depths), taken, len(live.buffer), depths

    deepest, taken, buffered, depths = asyncio.run(asyncio.wait_for(main(), 60))
    assert deepest <= 200 + 10  # a handful of notices may join the messages
    assert depths[-1] == depths[10]  # it stopped growing: the socket was not read meanwhile
    assert taken > 3_000  # nothing was dropped to keep it bounded
    assert buffered <= 1


def test_a_server_that_never_confirms_makes_send_wait_at_the_buffer_limit_and_loses_nothing() -> None:
    async def main() -> tuple[int, int, bool, int, int]:
        async with (
            FakeLiveServer(vertex=True, update_every=10**9) as server,  # consumes, never confirms
            connect(server.url, default_config(True)) as live,
        ):
            await live.wait_live(5)
            accepted = 0

            async def flood() -> None:
                nonlocal accepted
                for i in range(25_000):
                    await live.send(wire.RealtimeInput(text=f"f-{i}"))
                    accepted += 1

            sender = asyncio.ensure_future(flood())
            for _ in range(3000):  # bounded: until the buffer is full
                if len(live.buffer) >= live.config.max_buffer_messages:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)  # the sender stays parked at the limit: it does not drop or grow
            blocked = not sender.done()
            buffered = len(live.buffer)
            handed_back = await live.close()
            sender.cancel()
            return accepted, buffered, blocked, len(handed_back), len(server.sessions[0].conversation)

    accepted, buffered, blocked, handed_back, consumed = asyncio.run(asyncio.wait_for(main(), 60))
    assert blocked and buffered == 20_000 and accepted == 20_000
    assert handed_back == accepted  # every message the server never confirmed comes back, as itself
    assert consumed >= accepted - 300  # and the server did get them (it reads; it only never confirms)


def test_a_frame_the_session_rejects_is_reported_and_never_delivered() -> None:
    async def impossible(ws: Any) -> None:
        await ws.recv()
        await ws.send(wire.encode(wire.SetupComplete()))
        # An index past anything the client sent on this connection: impossible, so rejected.
        await ws.send(
            '{"sessionResumptionUpdate":{"newHandle":"h1","resumable":true,"lastConsumedClientMessageIndex":"9"}}'
        )
        await ws.send('{"serverContent":{"turnComplete":true}}')
        await ws.wait_closed()

    async def main() -> list[Any]:
        from websockets.asyncio.server import serve

        async with serve(impossible, "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}", default_config(True)) as live:
                items = []
                async for item in live:
                    items.append(item)
                    if isinstance(item, wire.ServerContent):
                        break
                return items

    items = asyncio.run(asyncio.wait_for(main(), 20))
    rejected = [i for i in items if isinstance(i, commands.FrameRejected)]
    assert len(rejected) == 1 and "lastConsumedClientMessageIndex: 9 is past" in rejected[0].error
    assert not [i for i in items if isinstance(i, wire.SessionResumptionUpdate)]
    assert not [i for i in items if isinstance(i, commands.MessagesDropped)]


def test_a_sending_task_that_crashes_fails_the_session_and_hands_back_the_unsent() -> None:
    class Crashing(LiveSession):
        async def _send(self, link: Any, message: wire.ClientMessage) -> None:
            if isinstance(message, wire.RealtimeInput) and message.text == "boom":
                raise RuntimeError("a transport bug")
            await super()._send(link, message)

    async def main() -> tuple[SessionFailedError, tuple[Any, ...]]:
        async with FakeLiveServer(vertex=True, update_every=10**9) as server:
            live = Crashing(server.url, default_config(True))
            await live.start()
            await live.wait_live(5)
            for text in ("before", "boom"):
                await live.send(wire.RealtimeInput(text=text))
            with pytest.raises(SessionFailedError) as failed:
                for _ in range(500):
                    await live.wait_live(1)
                    await asyncio.sleep(0.01)
            with pytest.raises(SessionFailedError):
                await live.send(wire.RealtimeInput(text="after"))
            await live.close()
            return failed.value, failed.value.messages

    error, messages = asyncio.run(asyncio.wait_for(main(), 20))
    assert "sending failed: RuntimeError('a transport bug')" in error.reason
    assert [m.text for _, m in messages] == ["before", "boom"]  # sent but unconfirmed, and never sent
