"""A worker process for the crash tests: ``python store_worker.py ROLE SERVER_URL STORE_URL SESSION_ID VERTEX``.

Roles: ``drive`` starts a session with the store and sends ``a0, a1, …`` until it is killed, printing
``SENT <tag>`` once ``send()`` returned; ``resume`` takes the session over (waiting for a dead worker's lease
to lapse), prints ``RESUMED``, sends ``<prefix>0..4``, drains, prints ``UNCONFIRMED <tag>`` for whatever the
server never confirmed and ``DRAINED``, then holds the session until stdin closes (or it is killed);
``probe`` tries to take it over without waiting and prints ``LEASED`` (exit 3) or ``TOOK``;
``contend`` (``... PREFIX``) does the same but stays: after ``LEASED`` it waits for a line on stdin (the
holder is gone), then takes the session over as ``resume`` does (exit 4 if it was not leased at first).
"""

from __future__ import annotations

import asyncio
import sys

from livestate import Backend, SessionConfig, wire
from livestate.drivers.websockets import connect, resume
from livestate.store import SessionLeased, open_store
from livestate.testing.server import tag_of

LEASE_TTL = 1.0
#: The default config apart from the knobs that only scale time.
FAST = {
    "goaway_margin": 0.1,
    "backoff_initial": 0.02,
    "backoff_max": 0.2,
    "setup_timeout": 2.0,
    "guard_window": 0.1,
}


def say(*words: str) -> None:
    print(*words, flush=True)


async def drive(url: str, store_url: str, sid: str, vertex: bool) -> None:
    options: dict[str, object] = dict(FAST)
    if vertex:
        options.update(backend=Backend.VERTEX, transparent=True)
    config = SessionConfig(setup=wire.Setup(model="models/fake"), **options)  # type: ignore[arg-type]
    store = open_store(store_url)
    from livestate.store import StorePersistence

    persistence = StorePersistence(store, sid, lease_ttl=LEASE_TTL)
    async with connect(url, config, store=persistence, session_id=sid) as live:
        await live.wait_live(5)
        i = 0
        while True:
            tag = f"a{i}"
            await live.send(wire.RealtimeInput(text=tag))
            say("SENT", tag)
            i += 1
            await asyncio.sleep(0.01)


async def take_over(url: str, store_url: str, sid: str, prefix: str) -> None:
    store = open_store(store_url)
    async with resume(url, store, sid, wait=LEASE_TTL * 10, lease_ttl=LEASE_TTL) as live:
        say("RESUMED", str(len(live.buffer)))
        for i in range(5):
            tag = f"{prefix}{i}"
            await live.send(wire.RealtimeInput(text=tag))
            say("SENT", tag)
        await live.wait_live(5)
        left = await live.drain(1.0)
        for _, message in left:
            say("UNCONFIRMED", tag_of(message))
        say("DRAINED")
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        for _, message in await live.close():
            say("UNCONFIRMED", tag_of(message))
    say("CLOSED")


async def probe(url: str, store_url: str, sid: str) -> int:
    store = open_store(store_url)
    try:
        async with resume(url, store, sid, wait=0.0, lease_ttl=LEASE_TTL):
            say("TOOK")
            return 0
    except SessionLeased as leased:
        say("LEASED", leased.owner)
        return 3


async def contend(url: str, store_url: str, sid: str, prefix: str) -> int:
    if await probe(url, store_url, sid) != 3:
        return 4
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await take_over(url, store_url, sid, prefix)
    return 0


def main() -> int:
    role, url, store_url, sid, vertex = sys.argv[1:6]
    if role == "drive":
        asyncio.run(drive(url, store_url, sid, vertex == "1"))
    elif role == "resume":
        asyncio.run(take_over(url, store_url, sid, sys.argv[6]))
    elif role == "probe":
        return asyncio.run(probe(url, store_url, sid))
    elif role == "contend":
        return asyncio.run(contend(url, store_url, sid, sys.argv[6]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
