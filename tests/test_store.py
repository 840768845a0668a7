"""Session stores (issue 15): the SessionStore contract, run against SQLite and a real redis-server."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from livestate import Session, wire
from livestate.buffer import ReplayBuffer
from livestate.store import LeaseLost, SessionLeased, SQLiteStore, StoreError
from livestate.store.base import Append, Drop, Trim, encode_frame
from livestate.store.sqlite import _SCHEMA

import helpers


@pytest.fixture(params=["sqlite", "redis"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        yield lambda: SQLiteStore(tmp_path / "s.db")
    else:
        url = request.getfixturevalue("redis_url")
        from livestate.store.redis import RedisStore

        yield lambda: RedisStore.from_url(url, prefix=f"t{tmp_path.name}:")


def session_with(tags: list[str]) -> tuple[Session, ReplayBuffer]:
    driver = helpers.driver(vertex=True).live()
    for tag in tags:
        driver.send(helpers.audio(tag))
    return driver.session, driver.buffer


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


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
    assert loaded.snapshot == session.snapshot() and loaded.saved_at == 100.0
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


def corrupt(tmp_path: Path, sql: str) -> str:
    async def main() -> str:
        store = SQLiteStore(tmp_path / "s.db")
        session, buffer = session_with(["m1", "m2"])
        lease = await store.acquire("call-7", "w", 5.0)
        ops = [Append(seq=s, frame=encode_frame(m)) for s, m in buffer.items()]
        await store.write(lease, ops, session.snapshot(), saved_at=1.0)
        store._db.execute(sql)
        try:
            await store.load("call-7")
        except StoreError as exc:
            return str(exc)
        finally:
            await store.close()
        return "loaded"

    return str(run(main()))


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("UPDATE sessions SET snapshot = substr(snapshot, 1, 40)", "the snapshot is corrupt"),
        ("UPDATE messages SET frame = substr(frame, 1, 10) WHERE seq = 2", "message seq 2 is corrupt"),
        (
            'UPDATE messages SET frame = \'{"realtimeInput":{"text":"x"}}\', sum = \'x\' WHERE seq = 1',
            "seq 1",
        ),
        ("DELETE FROM messages WHERE seq = 2", "the buffer lacks 1 unconfirmed messages"),
    ],
    ids=["truncated-snapshot", "truncated-message", "tampered-message", "missing-message"],
)
def test_a_corrupt_record_raises_a_store_error_naming_the_session(
    tmp_path: Path, sql: str, problem: str
) -> None:
    error = corrupt(tmp_path, sql)
    assert "'call-7'" in error and problem in error
    assert "handle" not in error.replace("handle_", "")


def test_the_schema_is_idempotent(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "x.db")
    db.executescript(_SCHEMA)
    db.executescript(_SCHEMA)
    assert {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")} == {
        "sessions",
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
