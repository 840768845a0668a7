"""Review of the incremental store write path: each test shows one bug found in review (real SQLite files, a
real redis-server, the real FakeLiveServer where a driver is needed; no mocks)."""

from __future__ import annotations

import asyncio
import sqlite3
import types
from pathlib import Path
from typing import Any

import pytest

from livestate import Session
from livestate.store import SQLiteStore, StoreError, StorePersistence, take_over
from livestate.store.base import Append, Trim, encode_frame

import helpers


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def _texts(items: Any) -> list[str]:
    return [m.text if hasattr(m, "text") and m.text else type(m).__name__ for _, m in items]


# --- 1. a failed batch: its changes are kept, but the next flush() returns without writing them -----------


def test_after_a_failed_write_flush_does_not_return_before_the_kept_changes_are_stored(
    tmp_path: Path,
) -> None:
    """``flush()`` promises every change recorded so far is stored when it returns (the writer awaits it
    before a message goes on the wire). After a failed batch the changes are kept for "the next" write, but
    nothing marks the session dirty: the next ``flush()`` returned at once with the message not stored."""

    async def main() -> list[str]:
        path = tmp_path / "s.db"
        store = SQLiteStore(path)
        d = helpers.driver(vertex=True).live()
        p = StorePersistence(store, "s1", lease_ttl=30.0)
        await p.start(d)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("ALTER TABLE messages RENAME TO messages_away")  # the store fails a while
        p.observe(d.session, d.send(helpers.audio("m1")))
        with pytest.raises(sqlite3.OperationalError):
            await p.flush()
        other.execute("ALTER TABLE messages_away RENAME TO messages")  # the store is back
        other.close()
        await p.flush()  # what the writer awaits before m1 goes on the wire
        stored = await store.unconfirmed("s1")
        await p.stop()
        await store.close()
        return _texts(stored)

    assert run(main()) == ["m1"]


# --- 2. a session taken over forgets its window order (a re-seed ahead of held input) ---------------------


def test_a_taken_over_session_keeps_its_window_order_in_the_store(make_store: Any) -> None:
    """A re-seed went out ahead of held input: the head names the window's order. The process that takes
    the session over starts with ``_disordered`` False, so its first write drops ``order`` and the store
    then loads the window in seq order, without any error: a wrong replay order after a second takeover."""
    from test_lossless import history, reseed_driver

    async def main() -> tuple[list[int], list[int], list[int]]:
        store = make_store()
        d = reseed_driver()
        d.send(helpers.audio("said meanwhile"))
        d.send(history("earlier turns", complete=False))  # goes out ahead of the held input
        first = StorePersistence(store, "s1", owner="w1", lease_ttl=30.0)
        await first.start(d)
        live = [u.seq for u in d.session.snapshot().unconsumed]
        loaded = await store.load("s1")
        assert loaded is not None
        # w1 dies; w2 takes over and writes once (what it does while it dials).
        assert first.lease is not None
        await store.release(first.lease)
        second, stored = await take_over(store, "s1", owner="w2", lease_ttl=30.0)
        session = Session.restore(stored.snapshot, at=0.0, elapsed=1.0)
        host = types.SimpleNamespace(session=session, buffer=stored.buffer)
        await second.start(host)  # type: ignore[arg-type]
        await second.flush()
        again = await store.load("s1")
        assert again is not None
        await second.stop()
        await store.close()
        return (
            live,
            [u.seq for u in loaded.snapshot.unconsumed],
            [u.seq for u in again.snapshot.unconsumed],
        )

    live, loaded, again = run(main())
    assert live != sorted(live)  # the scenario: a window not in seq order
    assert loaded == live
    assert again == live


# --- 3. Redis: a trim of more than ~8000 messages fails the script (Lua unpack limit) ---------------------


def test_redis_applies_a_trim_of_many_messages(redis_url: str, tmp_path: Path) -> None:
    """A handle that confirms 9000 messages at once (a long outage of 20 ms audio chunks; the default buffer
    takes 20000) is one Trim. The write script passed every trimmed seq to HDEL through ``unpack``, which
    Lua refuses beyond its stack limit: the write failed, and since the Trim is kept for the next write, every
    later batch of every session on that flusher failed too."""
    from livestate.store.redis import RedisStore

    async def main() -> int:
        store = RedisStore.from_url(redis_url, prefix=f"t{tmp_path.name}:")
        lease = await store.acquire("s1", "w1", 30.0)
        frame = encode_frame(helpers.audio("x"))
        ops = [Append(seq=seq, frame=frame, entry="[65]") for seq in range(1, 9001)]
        await store.write(lease, ops, None, saved_at=1.0)
        await store.write(lease, [Trim(seq=9000)], None, saved_at=2.0)
        left = len(await store.unconfirmed("s1"))
        await store.close()
        return left

    assert run(main()) == 0


# --- 4. start() refused ("already stored"), then close(): the stored session is overwritten and deleted ---


def test_closing_a_session_whose_start_was_refused_leaves_the_stored_session_alone(tmp_path: Path) -> None:
    """``start()`` refuses a session id that is already stored (a crashed worker's session awaiting
    ``resume``) and releases the lease, but keeps it as ``persistence.lease``. ``close()`` (a ``finally``
    around ``start()``) then wrote this fresh session's head over the stored one with that still-latest
    token and deleted the session: the crashed worker's handle and unconfirmed messages were gone."""
    from livestate.drivers.websockets import LiveSession
    from livestate.testing.server import FakeLiveServer

    async def main() -> list[str] | None:
        store = SQLiteStore(tmp_path / "s.db")
        # A worker stored "call-42" and died (its lease lapsed).
        crashed = helpers.driver(vertex=True).live()
        crashed.send(helpers.audio("kept"))
        lease = await store.acquire("call-42", "dead-worker", 30.0)
        ops = [Append(seq=s, frame=encode_frame(m)) for s, m in crashed.buffer.items()]
        await store.write(lease, ops, crashed.session.snapshot(), saved_at=1.0)
        await store.release(lease)
        async with FakeLiveServer(vertex=True) as server:
            live = LiveSession(server.url, helpers.config(vertex=True), store=store, session_id="call-42")
            try:
                with pytest.raises(StoreError, match="already stored"):
                    await live.start()
            finally:
                await live.close()
        loaded = await store.load("call-42")
        await store.close()
        return None if loaded is None else _texts(loaded.buffer.items())

    assert run(main()) == ["kept"]


# --- 5. one session's failing callback wedges the flusher: other sessions' flush() never returns ----------


def test_a_failing_lost_lease_callback_does_not_stall_the_other_sessions(tmp_path: Path) -> None:
    """The flusher calls each session's ``_written`` in turn; a lost lease calls ``on_lost`` (the driver
    fails the session there, running the application's ``on_command`` and telemetry). When it raised, the
    flusher task died: the sessions after it in the batch never heard back, and their ``flush()`` (what
    every writer awaits before sending) waited forever."""

    async def main() -> list[str]:
        store = SQLiteStore(tmp_path / "s.db")
        da, db = helpers.driver(vertex=True).live(), helpers.driver(vertex=True).live()
        pa = StorePersistence(store, "a", owner="w1", lease_ttl=30.0)
        pb = StorePersistence(store, "b", owner="w1", lease_ttl=30.0)

        def fails(reason: str) -> None:
            raise RuntimeError("the application's hook failed")

        await pa.start(da, fails)
        await pb.start(db)
        await store.acquire("a", "w1", 30.0)  # the same owner takes "a" again: a's token is stale
        pa.observe(da.session, da.send(helpers.audio("x")))
        pb.observe(db.session, db.send(helpers.audio("y")))
        outcome = []
        try:
            await asyncio.wait_for(pb.flush(), 3.0)
            outcome.append("b stored")
        except TimeoutError:
            outcome.append("b waits forever")
        try:
            await asyncio.wait_for(pa.flush(), 3.0)
        except TimeoutError:
            outcome.append("a waits forever")
        except StoreError as exc:
            outcome.append(type(exc).__name__)
        await store.close()
        return outcome

    assert run(main()) == ["b stored", "LeaseLost"]


# --- 6. Redis: a session deleted (dropped, expired) under a holder took its writes and came back corrupt ---


def test_a_write_after_the_session_was_deleted_is_refused(make_store: Any) -> None:
    """SQLite refuses a write for a deleted session (its fence row is gone: ``LeaseLost``). Redis kept the
    fence, so the holder's token stayed the latest: a worker whose session was dropped (``livestate
    sessions drop``, ``expire()`` after its lease lapsed in a stall) went on writing, and recreated a head
    without a config outside the session index: invisible to ``list_sessions``/``expire`` and refused by
    ``load`` ("the config record is corrupt")."""
    from livestate.store import LeaseLost

    async def main() -> tuple[str, list[str]]:
        store = make_store()
        d = helpers.driver(vertex=True).live()
        d.send(helpers.audio("m1"))
        lease = await store.acquire("s1", "w1", 30.0)
        ops = [Append(seq=s, frame=encode_frame(m)) for s, m in d.buffer.items()]
        await store.write(lease, ops, d.session.snapshot(), saved_at=1.0)
        assert await store.delete("s1")
        try:
            await store.write(lease, [], d.session.snapshot(), saved_at=2.0)
            outcome = "written"
        except LeaseLost:
            outcome = "refused"
        try:
            loaded = "none" if await store.load("s1") is None else "loaded"
        except StoreError as exc:
            loaded = f"StoreError: {exc}"
        ids = [i.session_id for i in await store.list_sessions()]
        await store.close()
        return outcome, [loaded, *ids]

    assert run(main()) == ("refused", ["none"])


# --- follow-ups to the review: a store that fails, a close it cannot finish, a takeover that cannot start --


def test_a_store_that_fails_fails_the_session_and_hands_the_message_back(tmp_path: Path) -> None:
    """``send()`` cannot store the message: the session fails loudly and the message comes back as itself
    (not a raw sqlite error for a message that would still go out, which a retrying application would
    send twice)."""
    from livestate.drivers.websockets import connect
    from livestate.errors import SessionFailedError
    from livestate.testing.server import FakeLiveServer

    async def main() -> tuple[SessionFailedError, str, list[str]]:
        path = tmp_path / "s.db"
        store = SQLiteStore(path)
        async with FakeLiveServer(vertex=True, update_every=10_000) as server:
            async with connect(server.url, helpers.config(vertex=True), store=store, session_id="s1") as live:
                await live.wait_live(5)
                await live.send(helpers.audio("m0"))
                other = sqlite3.connect(path, isolation_level=None)
                other.execute("ALTER TABLE messages RENAME TO messages_away")
                with pytest.raises(SessionFailedError) as failed:
                    await live.send(helpers.audio("m1"))
                other.close()
                state = live.state.name
            received = list(server.sessions[0].conversation) if server.sessions else []
        await store.close()
        return failed.value, state, received

    error, state, received = run(main())
    assert state == "FAILED" and "the store failed" in str(error)
    assert [m.text for _, m in error.messages] == ["m0", "m1"]
    assert "m1" not in received  # never on the wire without its write-ahead


def test_close_hands_back_even_when_the_store_cannot_delete_the_session(tmp_path: Path) -> None:
    async def main() -> tuple[int, list[Any]]:
        path = tmp_path / "s.db"
        store = SQLiteStore(path)
        d = helpers.driver(vertex=True).live()
        p = StorePersistence(store, "s1", lease_ttl=30.0)
        await p.start(d)
        p.observe(d.session, d.send(helpers.audio("m1")))
        await p.flush()
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("ALTER TABLE configs RENAME TO configs_away")  # delete() fails
        await p.stop()  # no exception: close() must still return what it handed back
        other.execute("ALTER TABLE configs_away RENAME TO configs")
        other.close()
        infos = await store.list_sessions()
        await store.close()
        return len(infos), infos

    count, _ = run(main())
    assert count == 1  # left for `livestate sessions drop`, as the warning says


def test_a_takeover_that_cannot_start_releases_the_lease_and_keeps_the_session(tmp_path: Path) -> None:
    from livestate.store import resuming

    async def main() -> tuple[str, int, Any]:
        store = SQLiteStore(tmp_path / "s.db")
        d = helpers.driver(vertex=True).live()
        p = StorePersistence(store, "s1", lease_ttl=30.0, owner="dead")
        await p.start(d)
        p.observe(d.session, d.send(helpers.audio("m1")))
        await p.flush()
        await store.release(p.lease)  # the worker died; its lease is gone

        def broken(config: Any, **_: Any) -> Any:
            raise RuntimeError("the transport could not be built")

        with pytest.raises(RuntimeError):
            async with resuming(store, "s1", broken):
                pass
        (info,) = await store.list_sessions()
        # Another attempt takes it over at once (the failed one gave the lease back).
        persistence, stored = await take_over(store, "s1", owner="second")
        await persistence.release()
        await store.close()
        return str(info.owner), info.messages, stored

    owner, messages, stored = run(main())
    assert owner == "None" and messages == 1 and [m.text for _, m in stored.buffer.items()] == ["m1"]


class _LoadCounting(SQLiteStore):
    loads = 0

    async def load(self, session_id: str) -> Any:
        self.loads += 1
        return await super().load(session_id)


def test_a_takeover_reads_early_but_never_resumes_from_a_stale_read(tmp_path: Path) -> None:
    """While the old lease runs out, ``take_over`` reads the session ahead (off the critical path). A write
    by the old holder after that read changes the stamp: the session is read again, so the new one resumes
    with what was last stored. Unchanged, the early read is used as it is."""

    async def main() -> tuple[list[str], int, list[str], int]:
        store = _LoadCounting(tmp_path / "s.db")
        d = helpers.driver(vertex=True).live()
        old = StorePersistence(store, "s1", lease_ttl=0.4, owner="slow")
        await old.start(d)
        old.observe(d.session, d.send(helpers.audio("m1")))
        await old.flush()
        old._renewing.cancel()  # type: ignore[union-attr]  # it stops renewing: its lease runs out
        store.loads = 0  # start() read it too, to refuse an id already stored
        taking = asyncio.ensure_future(take_over(store, "s1", owner="next", wait=5.0))
        while store.loads == 0:  # the early read is done
            await asyncio.sleep(0.01)
        old.observe(d.session, d.send(helpers.audio("m2")))  # the slow holder still writes
        await old.flush()
        first, stored = await taking
        reread = store.loads
        await first.release()
        # A second takeover with nothing written after its early read keeps that read.
        await store.acquire("s1", "third", 0.4)  # a holder that writes nothing, then dies
        store.loads = 0
        again = asyncio.ensure_future(take_over(store, "s1", owner="fourth", wait=5.0))
        _, stored_again = await again
        loads_again = store.loads
        await store.close()
        return _texts(stored.buffer.items()), reread, _texts(stored_again.buffer.items()), loads_again

    texts, reread, texts_again, loads_again = run(main())
    assert texts == ["m1", "m2"] and reread == 2
    assert texts_again == ["m1", "m2"] and loads_again == 1


def test_the_stamp_changes_with_every_write(make_store: Any) -> None:
    async def main() -> list[str | None]:
        store = make_store()
        d = helpers.driver(vertex=True).live()
        p = StorePersistence(store, "s1", lease_ttl=30.0)
        stamps = [await store.stamp("s1")]
        await p.start(d)
        stamps.append(await store.stamp("s1"))
        for tag in ("m1", "m2"):
            p.observe(d.session, d.send(helpers.audio(tag)))
            await p.flush()
            stamps.append(await store.stamp("s1"))
        await p.stop()
        await store.close()
        return stamps

    stamps = run(main())
    assert stamps[0] is None and None not in stamps[1:] and len(set(stamps[1:])) == 3


def test_the_wire_waits_for_messages_only(tmp_path: Path) -> None:
    """The writer's ``flush(messages_only=True)``: with a message recorded it returns once that message is
    stored; with only a head pending it does not wait for a write (a replay of stored messages goes out at
    once after a takeover)."""

    async def main() -> tuple[list[str], int, int]:
        store = SQLiteStore(tmp_path / "s.db")
        d = helpers.driver(vertex=True).live()
        p = StorePersistence(store, "s1", lease_ttl=30.0)
        await p.start(d)
        p.observe(d.session, d.send(helpers.audio("m1")))
        await p.flush(messages_only=True)
        stored = _texts(await store.unconfirmed("s1"))
        d.server(helpers.update("h1"))  # a handle: only the head changes
        p.observe(d.session, ())
        before = p._dirty
        await p.flush(messages_only=True)
        after = p._dirty  # still pending: nobody waited for it
        await p.flush()
        await p.stop()
        await store.close()
        return stored, int(before), int(after)

    stored, before, after = run(main())
    assert stored == ["m1"] and (before, after) == (1, 1)
