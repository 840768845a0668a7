"""Session stores (issue 15): the SessionStore contract, run against SQLite and a real redis-server."""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
import stat
from pathlib import Path
from typing import Any

import attrs
import pytest

from livestate import Session, UsageError, wire
from livestate.buffer import ReplayBuffer
from livestate.events import MessageReceived
from livestate.record import SessionSnapshot
from livestate.store import LeaseLost, SessionLeased, SQLiteStore, StoreError, StorePersistence
from livestate.store.base import Append, Drop, Trim, checksum, encode_frame
from livestate.store.sqlite import _SCHEMA, _message_sum

import helpers


def session_with(tags: list[str]) -> tuple[Session, ReplayBuffer]:
    driver = helpers.driver(vertex=True).live()
    for tag in tags:
        driver.send(helpers.audio(tag))
    return driver.session, driver.buffer


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


def as_stored(snapshot: SessionSnapshot) -> SessionSnapshot:
    """What a store gives back: every unconfirmed message unsent (the next process reports the old
    connection lost at once)."""
    entries = tuple(attrs.evolve(u, sent_at=None) for u in snapshot.unconsumed)
    return attrs.evolve(snapshot, unconsumed=entries)


def test_a_snapshot_and_its_messages_round_trip_and_trims_apply(make_store: Any) -> None:
    async def main() -> Any:
        store = make_store()
        session, buffer = session_with(["m1", "m2", "m3"])
        lease = await store.acquire("s1", "w1", 5.0)
        ops = [Append(seq=s, frame=encode_frame(m)) for s, m in buffer.items()]
        await store.write(lease, ops, session.snapshot(), saved_at=100.0)
        loaded = await store.load("s1")
        await store.write(lease, [Trim(seq=1), Drop(seqs=(3,))], None, saved_at=101.0)
        left = await store.unconfirmed("s1")
        infos = await store.list_sessions()
        await store.close()
        return session, loaded, left, infos

    session, loaded, left, infos = run(main())
    assert loaded.snapshot == as_stored(session.snapshot()) and loaded.saved_at == 100.0
    assert [(s, m.text) for s, m in loaded.buffer.items()] == [(1, "m1"), (2, "m2"), (3, "m3")]
    assert [(s, m.text) for s, m in left] == [(2, "m2")]
    (info,) = infos
    assert (info.session_id, info.messages, info.owner) == ("s1", 1, "w1")


def test_a_second_worker_is_refused_the_lease_and_a_stale_token_is_refused_writes(make_store: Any) -> None:
    async def main() -> list[str]:
        store = make_store()
        seen = []
        first = await store.acquire("s1", "w1", 0.3)
        try:
            await store.acquire("s1", "w2", 0.3)
        except SessionLeased as exc:
            seen.append(f"leased by {exc.owner}")
        await asyncio.sleep(0.4)  # w1 died: its lease lapses
        second = await store.acquire("s1", "w2", 5.0)
        seen.append(f"token {first.token}->{second.token}")
        for attempt in (store.write(first, [], None, saved_at=0.0), store.renew(first)):
            try:
                await attempt
            except LeaseLost as exc:
                seen.append("stale" if "stale" in str(exc) else str(exc))
        await store.write(second, [], None, saved_at=0.0)
        await store.release(second)
        third = await store.acquire("s1", "w3", 5.0)
        seen.append(f"token {third.token}")
        await store.close()
        return seen

    assert run(main()) == ["leased by w1", "token 1->2", "stale", "stale", "token 3"]


def test_expire_forgets_sessions_whose_handle_is_past_handle_ttl(make_store: Any) -> None:
    async def main() -> tuple[list[str], list[str], list[str]]:
        store = make_store()
        session, _ = session_with([])
        lease = await store.acquire("old", "w", 5.0)
        await store.write(lease, [], session.snapshot(), saved_at=1000.0)
        await store.release(lease)
        lease = await store.acquire("new", "w", 5.0)
        await store.write(lease, [], session.snapshot(), saved_at=1000.0 + 7000.0)
        await store.release(lease)
        early = await store.expire(now=1000.0 + 7100.0)
        expired = await store.expire(now=1000.0 + 7201.0)
        left = [i.session_id for i in await store.list_sessions()]
        await store.close()
        return early, expired, left

    assert run(main()) == ([], ["old"], ["new"])


def test_the_sqlite_file_is_private_and_uses_wal(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    mode = stat.S_IMODE((tmp_path / "s.db").stat().st_mode)
    journal = store._db.execute("PRAGMA journal_mode").fetchone()[0]
    run(store.close())
    assert (mode, journal) == (0o600, "wal")


def corrupt(tmp_path: Path, damage: Any) -> str:
    """Store a session of two messages, damage its records with ``damage(db)``, and load it."""

    async def main() -> str:
        store = SQLiteStore(tmp_path / "s.db")
        session, buffer = session_with(["m1", "m2"])
        lease = await store.acquire("call-7", "w", 5.0)
        ops = [Append(seq=s, frame=encode_frame(m)) for s, m in buffer.items()]
        await store.write(lease, ops, session.snapshot(), saved_at=1.0)
        damage(store._db)
        try:
            await store.load("call-7")
        except StoreError as exc:
            return str(exc)
        finally:
            await store.close()
        return "loaded"

    return str(run(main()))


def _sql(statement: str) -> Any:
    return lambda db: db.execute(statement)


def _rewrite_message(seq: int, frame: str, entry: str | None = None) -> Any:
    """Replace (or add) a message record with a valid checksum: only the layout's checks can tell.
    ``entry=None`` keeps the stored entry."""

    def damage(db: sqlite3.Connection) -> None:
        row = db.execute("SELECT entry FROM messages WHERE id='call-7' AND seq=?", (seq,)).fetchone()
        kept = entry if entry is not None else row[0]
        db.execute(
            "INSERT OR REPLACE INTO messages (id, seq, frame, entry, sum) VALUES ('call-7', ?, ?, ?, ?)",
            (seq, frame, kept, _message_sum(frame, kept)),
        )

    return damage


def _rewrite_head(change: Any) -> Any:
    def damage(db: sqlite3.Connection) -> None:
        (text,) = db.execute("SELECT head FROM sessions WHERE id='call-7'").fetchone()
        head = json.loads(text)
        change(head)
        text = json.dumps(head)
        db.execute("UPDATE sessions SET head=?, head_sum=? WHERE id='call-7'", (text, checksum(text)))

    return damage


_FRAME = '{"realtimeInput":{"text":"x"}}'


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (_sql("UPDATE sessions SET head = substr(head, 1, 40)"), "the head record is corrupt: checksum"),
        (
            _sql("UPDATE configs SET config = substr(config, 1, 40)"),
            "the config record is corrupt: checksum",
        ),
        (_sql("UPDATE messages SET frame = substr(frame, 1, 10) WHERE seq = 2"), "message seq 2 is corrupt"),
        (
            _sql(f"UPDATE messages SET frame = '{_FRAME}', sum = 'x' WHERE seq = 1"),
            "message seq 1 is corrupt",
        ),
        (_sql("DELETE FROM messages WHERE seq = 2"), "do not add up to the head's buffered bytes"),
        (_rewrite_message(3, _FRAME, "[10]"), "seq 3, past the head, carries no hot fields"),
        (_rewrite_message(4, _FRAME, "[10]"), "past the head's last seq 2 do not run on from it"),
        (
            _rewrite_message(3, _FRAME, '[10,{"sent_index":1}]'),
            "message seq 3's entry is corrupt (hot fields)",
        ),
        (_rewrite_message(1, _FRAME, "[999]"), "do not add up to the head's buffered bytes"),
        (_rewrite_message(1, _FRAME, "{}"), "message seq 1's entry is corrupt"),
        (_rewrite_message(1, "not json"), "message seq 1 is corrupt"),
        (_rewrite_head(lambda h: h.update(order=[2, 7])), "window order does not match"),
        (_rewrite_head(lambda h: h.update(seq="2")), "seq is not an integer"),
        (_rewrite_head(lambda h: h.update(state="NOWHERE")), "the head record is corrupt"),
        (_rewrite_head(lambda h: h.update(handle=17)), "the head record is corrupt"),
        (_sql("UPDATE sessions SET saved_at = NULL"), "saved_at is missing"),
        (_rewrite_head(lambda h: h.update(untransmitted=[[1]])), "untransmitted seqs do not match"),
    ],
    ids=[
        "truncated-head",
        "truncated-config",
        "truncated-message",
        "tampered-message",
        "missing-message",
        "extra-message",
        "tail-gap",
        "tail-bad-hot-fields",
        "wrong-size",
        "bad-entry",
        "bad-frame",
        "wrong-order",
        "bad-seq",
        "bad-state",
        "bad-handle",
        "no-saved-at",
        "bad-untransmitted",
    ],
)
def test_a_corrupt_record_raises_a_store_error_naming_the_session(
    tmp_path: Path, damage: Any, problem: str
) -> None:
    error = corrupt(tmp_path, damage)
    assert "'call-7'" in error and problem in error
    assert "handle" not in error.replace("handle_", "")


def test_an_undamaged_store_loads(tmp_path: Path) -> None:
    assert corrupt(tmp_path, lambda db: None) == "loaded"


def test_a_file_of_another_layout_is_refused_not_misread(tmp_path: Path) -> None:
    run(SQLiteStore(tmp_path / "s.db").close())
    db = sqlite3.connect(tmp_path / "s.db")
    db.execute("PRAGMA user_version=1")
    db.close()
    with pytest.raises(StoreError, match="layout 1, this livestate reads layout 3"):
        SQLiteStore(tmp_path / "s.db")


def test_the_schema_is_idempotent(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "x.db")
    db.executescript(_SCHEMA)
    db.executescript(_SCHEMA)
    assert {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")} == {
        "sessions",
        "configs",
        "messages",
    }


def test_handles_never_reach_the_list(tmp_path: Path) -> None:
    async def main() -> str:
        store = SQLiteStore(tmp_path / "s.db")
        driver = helpers.driver(vertex=True).live()
        driver.server(helpers.update("secret-handle-xyz", index=0))
        lease = await store.acquire("s", "w", 5.0)
        await store.write(lease, [], driver.session.snapshot(), saved_at=1.0)
        infos = await store.list_sessions()
        await store.close()
        return repr(infos)

    shown = run(main())
    assert "secret-handle-xyz" not in shown and "sha256:" in shown


_ = wire


def test_the_cli_lists_shows_and_drops_sessions_showing_handles_only_as_fingerprints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from livestate.cli import main

    async def seed() -> None:
        store = SQLiteStore(tmp_path / "s.db")
        driver = helpers.driver(vertex=True).live()
        driver.send(helpers.audio("m1"))
        driver.server(helpers.update("secret-handle-xyz", index=0))
        lease = await store.acquire("call-9", "w", 5.0)
        ops = [Append(seq=s, frame=encode_frame(m)) for s, m in driver.buffer.items()]
        await store.write(lease, ops, driver.session.snapshot(), saved_at=1.0)
        await store.close()

    run(seed())
    url = f"sqlite://{tmp_path / 's.db'}"
    codes = [main(["sessions", "list", url]), main(["sessions", "show", url, "call-9"])]
    codes += [main(["sessions", "drop", url, "call-9"]), main(["sessions", "show", url, "call-9"])]
    out = capsys.readouterr()
    assert codes == [0, 0, 0, 1]
    assert "secret-handle-xyz" not in out.out + out.err
    assert "call-9\tSETUP_COMPLETE\tsha256:" in out.out or "call-9\tRESUMABLE\tsha256:" in out.out
    assert "1 unconfirmed" in out.out and "records: ok" in out.out and "dropped call-9" in out.out


# --- what a store gives back resumes exactly like the session it was taken from ------------------------


def _resumes_alike(original: SessionSnapshot, loaded: SessionSnapshot) -> None:
    """Restored in a new process, both report the old connection lost, reconnect and replay alike."""
    t = original.last_at + 1.0
    sessions = [Session.restore(s, at=t, elapsed=1.0) for s in (original, loaded)]
    resumed = [s.resume(t) for s in sessions]
    assert resumed[0] == resumed[1]
    if sessions[0].state.name in ("CONNECTING", "RESUMING"):
        ready = MessageReceived(at=t, message=wire.SetupComplete(), connection=sessions[0].connection)
        assert sessions[0].handle(ready) == sessions[1].handle(ready)
    assert as_stored(sessions[0].snapshot()) == as_stored(sessions[1].snapshot())


def _vertex_confirmed_in_part() -> Any:
    d = helpers.driver(vertex=True).live()
    for i in range(3):
        d.send(helpers.audio(f"m{i}"))
    d.server(helpers.update("h1", index=1))
    return d, [
        lambda: d.send(helpers.audio("m3")),
        lambda: d.server(helpers.update("h2", index=2)),
        lambda: d.send(helpers.audio("m4")),
    ]


def _tool_answers_unconfirmed() -> Any:
    d = helpers.driver().live()
    d.server(helpers.update("h1"))
    d.server(helpers.tool_call("c1"))
    return d, [
        lambda: d.send(helpers.tool_response("c1")),
        lambda: d.send(helpers.audio("after")),
        lambda: d.server(helpers.tool_call("c2")),
        lambda: d.advance(5.0),
        lambda: d.server(helpers.update("h2")),
    ]


def _an_outage() -> Any:
    d = helpers.driver(vertex=True).live()
    d.send(helpers.audio("a"))
    return d, [
        lambda: d.close(1006),
        lambda: d.send(helpers.audio("b")),
        lambda: d.send(helpers.audio("c")),
    ]


def _a_reseed_ahead_of_held_input() -> Any:
    from test_lossless import history, reseed_driver

    d = reseed_driver()
    return d, [
        lambda: d.send(helpers.audio("said meanwhile")),
        lambda: d.send(history("earlier turns", complete=False)),
        lambda: d.send(history("the last turn", complete=True)),
        lambda: d.server(helpers.update("h2", index=4)),
        lambda: d.server(helpers.update("h3", index=6)),
    ]


@pytest.mark.parametrize(
    ("scenario", "headless"),
    [
        (_vertex_confirmed_in_part, True),
        (_tool_answers_unconfirmed, True),
        (_an_outage, False),  # its sends are buffered while offline: each changes more than the counters
        (_a_reseed_ahead_of_held_input, False),  # held input and re-seeds reorder the window
    ],
)
def test_after_every_step_the_stored_session_resumes_like_the_live_one(
    make_store: Any, scenario: Any, headless: bool
) -> None:
    """The persistence writes only what changed (message records, a head, or for plain sends their records
    alone); loaded after any step, the session resumes exactly as the one in memory would: same commands,
    same replays, same buffer."""

    async def main() -> int:
        store = make_store()
        d, steps = scenario()
        persistence = StorePersistence(store, "s1", lease_ttl=30.0)
        await persistence.start(d)
        d.on_event = lambda event, out: persistence.observe(d.session, out, event)
        writes: list[Any] = []
        write_batch = store.write_batch

        async def counted(batch: Any) -> Any:
            writes.extend(batch)
            return await write_batch(batch)

        store.write_batch = counted
        checked = 0
        for step in [lambda: None, *steps]:
            step()
            await persistence.flush()
            loaded = await store.load("s1")
            assert loaded is not None
            assert loaded.snapshot == as_stored(d.session.snapshot())
            assert loaded.buffer.items() == d.buffer.items()
            _resumes_alike(d.session.snapshot(), loaded.snapshot)
            checked += 1
        assert any(w.head is None for w in writes) is headless
        assert any(w.head is not None for w in writes)
        await persistence.stop()
        assert await store.load("s1") is None
        await store.close()
        return checked

    assert run(main()) >= 4


def test_plain_sends_are_written_without_the_head_and_load_exactly(tmp_path: Path) -> None:
    """A send that only appends and moves the counters is stored as its message record alone, the last one
    carrying the hot fields (server content between sends opened a turn: the tail carries that too). The
    load equals the live session; a tail with a record missing from its middle is refused."""

    async def main() -> tuple[int, str]:
        store = SQLiteStore(tmp_path / "s.db")
        d = helpers.driver(vertex=True).live()
        persistence = StorePersistence(store, "s1", lease_ttl=30.0)
        await persistence.start(d)
        d.on_event = lambda event, out: persistence.observe(d.session, out, event)
        d.server(wire.ServerContent(turn_complete=True))  # the first progress: the next write takes the head
        d.send(helpers.audio("a"))
        await persistence.flush()
        heads_before = store._db.execute("SELECT head_sum FROM sessions").fetchone()
        d.server(wire.ServerContent(model_turn=wire.Content(parts=(wire.Part(text="hi"),))))
        d.send(helpers.audio("b"))
        await persistence.flush()
        d.send(helpers.audio("c"))
        d.send(helpers.audio("d"))
        await persistence.flush()
        assert store._db.execute("SELECT head_sum FROM sessions").fetchone() == heads_before
        loaded = await store.load("s1")
        assert loaded is not None and loaded.snapshot.turn_open
        assert loaded.snapshot == as_stored(d.session.snapshot())
        assert loaded.buffer.items() == d.buffer.items()
        tail = store._db.execute("SELECT count(*) FROM messages WHERE entry LIKE '%buffered_bytes%'")
        stored_tips = tail.fetchone()[0]
        store._db.execute("DELETE FROM messages WHERE seq = 2")
        try:
            await store.load("s1")
        except StoreError as exc:
            return stored_tips, str(exc)
        finally:
            await store.close()
        return stored_tips, "loaded"

    tips, error = run(main())
    assert tips == 2  # b, and d (c went in d's write, without fields of its own)
    assert "'s1'" in error and "do not run on from it" in error


# --- the driver's side: a lost lease, batching -----------------------------------------------------------


def _take_the_lease_away(store: Any, session_id: str) -> Any:
    """What another worker's takeover does to this one: the session's fencing counter moves on."""
    if isinstance(store, SQLiteStore):
        store._db.execute("UPDATE sessions SET fence = fence + 1 WHERE id = ?", (session_id,))
        return None
    (fence,) = store._keys(session_id, "fence")
    return store.client.incr(fence)


def test_a_worker_whose_lease_was_taken_fails_the_session_and_hands_every_message_back(
    make_store: Any,
) -> None:
    from livestate.drivers.websockets import connect
    from livestate.errors import SessionFailedError
    from livestate.testing.server import FakeLiveServer

    async def main() -> tuple[SessionFailedError, list[str], str]:
        store = make_store()
        # The server never confirms: every message sent stays unconfirmed.
        async with FakeLiveServer(vertex=True, update_every=10_000) as server:
            config = helpers.config(vertex=True)
            async with connect(server.url, config, store=store, session_id="s1") as live:
                await live.wait_live(5)
                sent = []
                for i in range(3):
                    await live.send(helpers.audio(f"m{i}"))
                    sent.append(f"m{i}")
                await (_take_the_lease_away(store, "s1") or asyncio.sleep(0))
                with pytest.raises(SessionFailedError) as failed:
                    await live.send(helpers.audio("m3"))
                state = live.state.name
        await store.close()
        return failed.value, sent, state

    error, sent, state = run(main())
    assert state == "FAILED" and "lease lost" in str(error) and "stale" in str(error)
    # Every message, the refused one too, is handed back as itself; none was left in the dark.
    assert [m.text for _, m in error.messages] == [*sent, "m3"]


class _CountingSQLiteStore(SQLiteStore):
    batches: list[int]

    async def write_batch(self, writes: Any) -> Any:
        self.batches.append(len(writes))
        return await super().write_batch(writes)


def test_sessions_that_write_together_share_one_batch(tmp_path: Path) -> None:
    """Forty sessions each send a message in the same loop tick: one transaction carries them all, not
    forty (the per-message cost the store bench measures depends on it)."""

    async def main() -> list[int]:
        store = _CountingSQLiteStore(tmp_path / "s.db")
        store.batches = []
        drivers = [helpers.driver(vertex=True).live() for _ in range(40)]
        links = [StorePersistence(store, f"s{i}", lease_ttl=30.0) for i in range(40)]
        for d, p in zip(drivers, links, strict=True):
            await p.start(d)
        store.batches.clear()
        for d, p in zip(drivers, links, strict=True):
            p.observe(d.session, d.send(helpers.audio("m")))
        await asyncio.gather(*(p.flush() for p in links))
        stored = [len(await store.unconfirmed(f"s{i}")) for i in range(40)]
        await store.close()
        assert stored == [1] * 40
        return store.batches

    assert run(main()) == [40]


def test_batches_start_a_batch_window_apart_and_a_write_after_a_quiet_spell_at_once(tmp_path: Path) -> None:
    """Group commit: thirty sessions send one after another, 5 ms apart, under a 200 ms batch window. The
    first write goes alone and at once (nothing was written before it); the others wait for the window and
    share the next commit; no two batches start closer than the window."""

    async def main() -> tuple[list[int], list[float]]:
        store = _CountingSQLiteStore(tmp_path / "s.db", batch_window=0.2)
        store.batches = []
        starts: list[float] = []
        loop = asyncio.get_running_loop()
        write_batch = store.write_batch

        async def timed(writes: Any) -> Any:
            starts.append(loop.time())
            return await write_batch(writes)

        store.write_batch = timed  # type: ignore[method-assign]
        drivers = [helpers.driver(vertex=True).live() for _ in range(30)]
        links = [StorePersistence(store, f"s{i}", lease_ttl=30.0) for i in range(30)]
        for d, p in zip(drivers, links, strict=True):
            await p.start(d)
        await asyncio.sleep(0.25)  # a quiet spell, longer than the window
        store.batches.clear()
        starts.clear()
        flushes = []
        for d, p in zip(drivers, links, strict=True):
            p.observe(d.session, d.send(helpers.audio("m")))
            flushes.append(asyncio.ensure_future(p.flush()))
            await asyncio.sleep(0.005)
        await asyncio.gather(*flushes)
        stored = [len(await store.unconfirmed(f"s{i}")) for i in range(30)]
        await store.close()
        assert stored == [1] * 30
        return store.batches, starts

    batches, starts = run(main())
    assert batches[0] == 1 and sum(batches) == 30 and len(batches) <= 3
    assert all(later - earlier >= 0.2 - 0.002 for earlier, later in itertools.pairwise(starts))


def test_a_batch_that_finds_the_write_lock_taken_waits_on_the_worker_thread_not_the_loop(
    tmp_path: Path,
) -> None:
    """Batches are committed on the loop, but never wait there: while another process holds SQLite's write
    lock, the batch goes to the store's worker thread and the loop runs on; it is stored once the lock is
    free."""

    async def main() -> tuple[bool, float, int]:
        store = SQLiteStore(tmp_path / "s.db")
        session, buffer = session_with(["m1"])
        lease = await store.acquire("s1", "w", 30.0)
        other = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another worker's transaction
        loop = asyncio.get_running_loop()
        ticks = [loop.time()]

        async def ticker() -> None:
            while True:
                await asyncio.sleep(0.005)
                ticks.append(loop.time())

        ticking = asyncio.ensure_future(ticker())
        ops = [Append(seq=s, frame=encode_frame(m)) for s, m in buffer.items()]
        write = asyncio.ensure_future(store.write(lease, ops, session.snapshot(), saved_at=1.0))
        await asyncio.sleep(0.3)
        waited, stalled = not write.done(), max(b - a for a, b in itertools.pairwise(ticks))
        other.execute("COMMIT")
        other.close()
        await write
        ticking.cancel()
        stored = await store.unconfirmed("s1")
        await store.close()
        return waited, stalled, len(stored)

    waited, stalled, stored = run(main())
    # The loop was never held: no gap between its ticks near SQLite's lock wait (10 s; 1 s in the mutant
    # this was checked against), and the write waited for the lock elsewhere.
    assert waited and stalled < 0.5 and stored == 1


def test_batches_on_the_loop_reach_the_database_file_through_the_threads_checkpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop's connection never checkpoints (a checkpoint syncs the file); the worker thread does, so the
    WAL is copied into the database file as batches go (here after every batch)."""
    import livestate.store.sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "_CHECKPOINT_EVERY", 0.0)

    async def main() -> tuple[int, int]:
        store = SQLiteStore(tmp_path / "s.db")
        lease = await store.acquire("s1", "w", 30.0)
        await store.write(lease, [], session_with([])[0].snapshot(), saved_at=1.0)
        await store._call(lambda: None)  # the checkpoints asked for so far are done
        before = (tmp_path / "s.db").stat().st_size
        frame = encode_frame(wire.RealtimeInput(text="x" * 20_000))
        for seq in range(1, 21):
            await store.write(lease, [Append(seq=seq, frame=frame, entry="[1]")], None, saved_at=1.0)
        await store._call(lambda: None)
        after = (tmp_path / "s.db").stat().st_size
        await store.close()
        return before, after

    before, after = run(main())
    assert after - before >= 20 * 20_000


@pytest.mark.parametrize("window", [-0.001, 1.5, float("nan"), True, "0.002"])
def test_a_batch_window_out_of_range_is_a_usage_error(tmp_path: Path, window: Any) -> None:
    with pytest.raises(UsageError, match="batch_window must be between 0 and 1 second"):
        SQLiteStore(tmp_path / "s.db", batch_window=window)


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        ("truncate-head", "the head record is corrupt: checksum"),
        ("drop-config", "the config record is corrupt"),
        ("drop-message", "do not add up to the head's buffered bytes"),
        ("tamper-message", "message seq 1 is corrupt: checksum"),
        ("truncate-message", "message seq 2 is corrupt"),
    ],
)
def test_a_corrupt_redis_record_raises_a_store_error_naming_the_session(
    redis_url: str, tmp_path: Path, damage: str, problem: str
) -> None:
    from livestate.store.redis import RedisStore

    async def main() -> str:
        store = RedisStore.from_url(redis_url, prefix=f"d{tmp_path.name}:")
        session, buffer = session_with(["m1", "m2"])
        lease = await store.acquire("call-7", "w", 5.0)
        ops = [Append(seq=s, frame=encode_frame(m)) for s, m in buffer.items()]
        await store.write(lease, ops, session.snapshot(), saved_at=1.0)
        meta, msgs, seqs = store._keys("call-7", "meta", "msgs", "seqs")
        client = store.client
        if damage == "truncate-head":
            await client.hset(meta, "head", (await client.hget(meta, "head"))[:40])
        elif damage == "drop-config":
            await client.hdel(meta, "config")
        elif damage == "drop-message":
            await client.hdel(msgs, "2")
            await client.zrem(seqs, "2")
        elif damage == "tamper-message":
            digest, entry, frame = (await client.hget(msgs, "1")).split("\n", 2)
            await client.hset(msgs, "1", f"{digest}\n{entry}\n{frame.replace('m1', 'mX')}")
        else:
            await client.hset(msgs, "2", (await client.hget(msgs, "2"))[:30])
        try:
            await store.load("call-7")
        except StoreError as exc:
            return str(exc)
        finally:
            await store.close()
        return "loaded"

    error = run(main())
    assert "'call-7'" in error and problem in error


def test_a_redis_write_refused_for_one_session_fails_that_session_alone(
    redis_url: str, tmp_path: Path
) -> None:
    """Redis applies each session's script on its own: when one is refused (here its messages key was
    clobbered with a string), that session's flush raises ``StoreError`` and keeps its changes; the other
    session in the same batch is stored and its flush returns."""
    from livestate.store.redis import RedisStore

    async def main() -> tuple[str, int]:
        store = RedisStore.from_url(redis_url, prefix=f"c{tmp_path.name}:")
        drivers = [helpers.driver(vertex=True).live() for _ in range(2)]
        links = [StorePersistence(store, f"s{i}", lease_ttl=30.0) for i in range(2)]
        for d, p in zip(drivers, links, strict=True):
            await p.start(d)
        (clobbered,) = store._keys("s1", "msgs")
        await store.client.set(clobbered, "not a hash")
        for d, p in zip(drivers, links, strict=True):
            p.observe(d.session, d.send(helpers.audio("m")))
        results = await asyncio.gather(*(p.flush() for p in links), return_exceptions=True)
        assert results[0] is None
        stored = len(await store.unconfirmed("s0"))
        await store.client.delete(clobbered)
        await store.close()
        return repr(results[1]), stored

    error, stored = run(main())
    assert "StoreError" in error and "'s1'" in error and "WRONGTYPE" in error
    assert stored == 1
