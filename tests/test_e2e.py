"""End to end over real sockets on loopback: the websockets driver against FakeLiveServer with faults.

Every test is bounded: a handful of seconds of compressed session time, asyncio.wait_for around the lot.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import attrs
import pytest

from livestate import Backend, SessionConfig, SessionState, commands, wire
from livestate.drivers.websockets import LiveSession, connect
from livestate.testing.server import FakeLiveServer, Fault, FaultPlan, tag_of

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

FAST = {
    "goaway_margin": 0.1,
    "backoff_initial": 0.02,
    "backoff_max": 0.2,
    "setup_timeout": 2.0,
    "healthy_after": 0.5,
    "guard_window": 0.1,
    "max_attempts_per_outage": 20,
    "max_attempts_per_session": 500,
}


def make_config(vertex: bool, **overrides: Any) -> SessionConfig:
    options = {**FAST, **overrides}
    if vertex:
        options.update(backend=Backend.VERTEX, transparent=True)
    return SessionConfig(setup=wire.Setup(model="models/fake"), **options)


@attrs.define
class Outcome:
    sent: list[str]
    notices: list[Any]
    final_state: SessionState
    #: Tags of the messages close() handed back: sent but not yet confirmed when the test stopped (under
    #: load, a reconnect can still be under way then). Handed back is not lost: the application has them.
    handed_back: set[str] = attrs.field(factory=set)


async def drive(live: LiveSession, prefix: str, count: int, *, interval: float = 0.004) -> Outcome:
    """Send ``count`` tagged messages (every 25th asks a question, so the model takes turns), answer tool
    calls, and collect notices; close at the end."""
    notices: list[Any] = []
    sent: list[str] = []

    async def read() -> None:
        async for item in live:
            if isinstance(item, wire.ToolCall):
                for call in item.function_calls or ():
                    response = wire.FunctionResponse(id=call.id, name=call.name, response={"ok": True})
                    await live.send(wire.ToolResponse(function_responses=(response,)))
                    sent.append(f"response:{call.id}")
            elif not hasattr(item, "usage_metadata"):
                notices.append(item)

    reader = asyncio.ensure_future(read())
    for i in range(count):
        tag = f"{prefix}-{i}" + ("?" if i % 25 == 24 else "")
        sent.append(tag)
        await live.send(wire.RealtimeInput(text=tag))
        await asyncio.sleep(interval)
    # Let the last messages be confirmed before closing (a handle after the last send).
    for _ in range(50):
        if not live.session.unconfirmed_count and live.state in (
            SessionState.RESUMABLE,
            SessionState.GENERATING,
        ):
            break
        await asyncio.sleep(0.01)
    final = live.state
    handed_back = {tag_of(message) for _, message in await live.close()}
    await asyncio.wait_for(reader, 5)
    return Outcome(sent, notices, final, handed_back)


def audit(server: FakeLiveServer, outcome: Outcome) -> tuple[set[str], Counter[str]]:
    """What was lost (in no conversation, and not handed back at close) and duplicated (twice in one
    conversation)."""
    mine = set(outcome.sent)
    seen: set[str] = set()
    duplicated: Counter[str] = Counter()
    for session in server.sessions:
        counts = Counter(tag for tag in session.conversation if tag in mine)
        seen |= set(counts)
        duplicated.update({tag: n - 1 for tag, n in counts.items() if n > 1})
    return mine - seen - outcome.handed_back, duplicated


MIXES = {
    "goaway-mid-turn-then-drop-then-1011": FaultPlan(
        faults=(
            Fault(connection=1, after_messages=24, kind="goaway"),
            Fault(connection=2, after_messages=30, kind="drop"),
            Fault(connection=3, after_messages=40, kind="error_1011"),
        ),
        go_away_time_left=0.3,
    ),
    "random-drops": FaultPlan(seed=7, drop_rate=0.008),
    "random-1011-and-goaway": FaultPlan(seed=11, error_rate=0.01, go_away_rate=0.01, go_away_time_left=0.2),
    "silent-goaway-deadline": FaultPlan(
        faults=(Fault(connection=1, after_messages=50, kind="goaway_silent"),), go_away_time_left=0.4
    ),
    "connection-age-limit": FaultPlan(max_connection_age=0.5, go_away_time_left=0.15),
}


@pytest.mark.parametrize("vertex", [True, False], ids=["vertex-transparent", "gemini-handle-only"])
@pytest.mark.parametrize("mix", list(MIXES))
def test_nothing_is_lost_under_faults(vertex: bool, mix: str) -> None:
    async def main() -> tuple[list[Outcome], FakeLiveServer]:
        async with FakeLiveServer(MIXES[mix], vertex=vertex) as server:
            outcomes = []
            for n in range(3):  # three sessions, one after another, on the same server
                # A drop before the first handle leaves nothing to resume: the session starts fresh and,
                # with this knob, replays its buffer into the new conversation instead of dropping it.
                config = make_config(vertex, seed=n, replay_after_fresh_session=True)
                async with connect(server.url, config) as live:
                    outcomes.append(await drive(live, f"s{n}", 200))
            return outcomes, server

    outcomes, server = asyncio.run(asyncio.wait_for(main(), 60))
    assert server.faults_done, "the mix injected no fault"
    total_sent = total_dup = 0
    for outcome in outcomes:
        assert outcome.final_state is not SessionState.FAILED
        lost, duplicated = audit(server, outcome)
        assert lost == set()
        replayed = sum(n.replayed for n in outcome.notices if isinstance(n, commands.Resumed))
        if vertex:
            assert sum(duplicated.values()) == 0
        else:
            assert sum(duplicated.values()) <= replayed  # at least once: only replays can repeat
        total_sent += len(outcome.sent)
        total_dup += sum(duplicated.values())
    assert sum(1 for o in outcomes for n in o.notices if isinstance(n, commands.Resumed)) >= 1
    for session in server.sessions:
        assert session.unknown_tool_responses == []
    print(f"{mix} {'vertex' if vertex else 'gemini'}: {total_sent} sent, {total_dup} duplicated")


def test_a_rejected_resume_starts_fresh_and_says_so() -> None:
    plan = FaultPlan(
        faults=(
            Fault(connection=1, after_messages=20, kind="reject_next_resume"),
            Fault(connection=1, after_messages=20, kind="drop"),
        )
    )

    async def main() -> tuple[Outcome, FakeLiveServer]:
        async with FakeLiveServer(plan, vertex=True) as server:
            config = make_config(True, replay_after_fresh_session=True)
            async with connect(server.url, config) as live:
                return await drive(live, "r", 60), server

    outcome, server = asyncio.run(asyncio.wait_for(main(), 30))
    resumed = [n for n in outcome.notices if isinstance(n, commands.Resumed)]
    assert [r.state_restored for r in resumed] == [False]
    assert server.rejected_resumes == 1 and len(server.sessions) == 2
    lost, duplicated = audit(server, outcome)
    assert lost == set() and not duplicated


def test_a_tool_call_cut_by_a_drop_is_orphaned_and_its_answer_never_replayed() -> None:
    plan = FaultPlan(faults=(Fault(connection=1, after_messages=6, kind="drop"),))

    async def main() -> tuple[list[Any], FakeLiveServer]:
        async with (
            FakeLiveServer(plan, vertex=True) as server,
            connect(server.url, make_config(True)) as live,
        ):
            notices: list[Any] = []
            calls: list[str] = []

            async def read() -> None:
                async for item in live:
                    if isinstance(item, wire.ToolCall):
                        calls.extend(str(call.id) for call in item.function_calls or ())
                    elif not hasattr(item, "usage_metadata"):
                        notices.append(item)

            reader = asyncio.ensure_future(read())
            for i in range(5):
                await live.send(wire.RealtimeInput(text=f"t-{i}"))
            await live.send(wire.RealtimeInput(text="tool:weather"))  # the 6th: call, then the drop
            for _ in range(100):
                if calls:
                    break
                await asyncio.sleep(0.01)
            await live.send(
                wire.ToolResponse(
                    function_responses=(wire.FunctionResponse(id=calls[0], name="lookup", response={}),)
                )
            )
            await live.wait_live(5)
            await asyncio.sleep(0.2)
            await live.close()
            await asyncio.wait_for(reader, 5)
            return notices, server

    notices, server = asyncio.run(asyncio.wait_for(main(), 30))
    orphaned = [n for n in notices if isinstance(n, commands.ToolCallsOrphaned)]
    first_call = "call-tool:weather-1"
    assert orphaned and first_call in orphaned[0].ids
    assert server.sessions[0].unknown_tool_responses == []
    # The replayed question may make the model call again (a new id); the orphaned call's answer never goes.
    assert f"response:{first_call}" not in server.sessions[0].conversation


def test_send_never_fails_while_the_server_is_unreachable() -> None:
    async def main() -> list[str]:
        async with FakeLiveServer(vertex=True) as server:
            url = server.url
        # the server is gone: every attempt fails with 1006, within budget
        config = make_config(True, max_attempts_per_outage=3, backoff_initial=0.01)
        notices = []
        async with connect(url, config) as live:
            for i in range(5):
                await live.send(wire.RealtimeInput(text=f"x{i}"))
            async for item in live:
                notices.append(type(item).__name__)
        return notices

    notices = asyncio.run(asyncio.wait_for(main(), 30))
    assert "SessionFailed" in notices
    assert notices.count("MessagesDropped") == 1


def test_a_saved_session_carries_on_in_a_new_driver_after_a_crash() -> None:
    """Driver A saves the state on every handle update and then dies without closing; driver B restores it,
    reports the dead connection, resumes with the handle and replays; the application re-sends what it sent
    after the last save. The server ends with every message exactly once."""
    from livestate import snapshots

    async def main() -> tuple[list[str], FakeLiveServer, list[Any], Any]:
        async with FakeLiveServer(vertex=True, update_every=5) as server:
            config = make_config(True)
            saved: dict[str, Any] = {}
            live_a = LiveSession(server.url, config)

            def persist(event: Any) -> None:
                if isinstance(getattr(event, "message", None), wire.SessionResumptionUpdate):
                    saved["state"] = snapshots.save_state(live_a.session.snapshot(), live_a.buffer)
                    saved["sent"] = len(sent)

            live_a.session.recorder = persist
            await live_a.start()
            sent: list[str] = []
            for i in range(23):
                sent.append(f"c{i}")
                await live_a.send(wire.RealtimeInput(text=f"c{i}"))
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.05)
            # the crash: tasks gone, socket cut, no close
            for link in live_a._links:
                if link.conn is not None:
                    link.conn.transport.abort()
                if link.task is not None:
                    link.task.cancel()
            await asyncio.sleep(0.05)
            restored = snapshots.load_state(saved["state"])
            notices: list[Any] = []
            async with connect(server.url, config, restore=restored, restored_after=0.1) as live_b:
                for tag in sent[saved["sent"] :]:  # what A sent after its last save
                    await live_b.send(wire.RealtimeInput(text=tag))
                for i in range(23, 30):
                    sent.append(f"c{i}")
                    await live_b.send(wire.RealtimeInput(text=f"c{i}"))
                await live_b.wait_live(5)
                await asyncio.sleep(0.2)
                while not live_b._items.empty():
                    notices.append(live_b._items.get_nowait())
                stats = live_b.stats
            return sent, server, notices, stats

    sent, server, notices, stats = asyncio.run(asyncio.wait_for(main(), 30))
    assert [n.state_restored for n in notices if isinstance(n, commands.Resumed)] == [True]
    # The connection the crashed process held counts as a reconnect of this one, with its gap.
    assert stats.reconnects == {"close 1006": 1} and stats.last_gap is not None
    (session,) = server.sessions
    assert sorted(session.conversation) == sorted(sent)


def test_binary_pretty_printed_frames_work_like_text() -> None:
    """The Gemini API sends pretty-printed JSON; early web clients saw binary frames. Both decode."""
    plan = FaultPlan(faults=(Fault(kind="goaway", on_text="b-30"),), go_away_time_left=0.2)

    async def main() -> tuple[Outcome, FakeLiveServer]:
        server = FakeLiveServer(plan, vertex=True, binary_frames=True)
        async with server, connect(server.url, make_config(True)) as live:
            return await drive(live, "b", 60), server

    outcome, server = asyncio.run(asyncio.wait_for(main(), 30))
    assert isinstance(server.frame(wire.SetupComplete()), bytes)
    assert [n.state_restored for n in outcome.notices if isinstance(n, commands.Resumed)] == [True]
    lost, duplicated = audit(server, outcome)
    assert lost == set() and not duplicated
