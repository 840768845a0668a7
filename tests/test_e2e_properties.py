"""Property tests over real sockets: any fault plan the strategies draw, and still nothing lost.

This is also the README's example of ``livestate.testing.strategies`` in a user's own tests.
"""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings

from livestate import Backend, SessionConfig, wire
from livestate.drivers.websockets import connect
from livestate.testing import strategies
from livestate.testing.server import FakeLiveServer, FaultPlan


def config() -> SessionConfig:
    return SessionConfig(
        setup=wire.Setup(model="models/fake"),
        backend=Backend.VERTEX,
        transparent=True,
        goaway_margin=0.02,
        backoff_initial=0.01,
        backoff_max=0.05,
        setup_timeout=1.0,
        healthy_after=0.2,
        max_attempts_per_outage=30,
        max_attempts_per_session=300,
        replay_after_fresh_session=True,
    )


async def exchange(plan: FaultPlan, count: int) -> tuple[list[str], list[list[str]]]:
    async with FakeLiveServer(plan, vertex=True) as server:
        async with connect(server.url, config()) as live:
            sent = []
            for i in range(count):
                sent.append(f"m{i}")
                await live.send(wire.RealtimeInput(text=f"m{i}"))
                await asyncio.sleep(0.002)
            # Wait (bounded) until the server's ledger holds every message: under load an outage can end
            # late, and the session replays whatever was not confirmed when it does.
            for _ in range(1000):
                if set(sent) <= {tag for s in server.sessions for tag in s.conversation}:
                    break
                await asyncio.sleep(0.01)
        return sent, [s.conversation for s in server.sessions]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(strategies.fault_plans(connections=4, messages=40))
def test_transparent_sessions_lose_and_duplicate_nothing_under_any_fault_plan(plan: FaultPlan) -> None:
    sent, conversations = asyncio.run(asyncio.wait_for(exchange(plan, 80), 60))
    seen = {tag for conversation in conversations for tag in conversation}
    assert set(sent) <= seen
    for conversation in conversations:
        assert len(conversation) == len(set(conversation))
