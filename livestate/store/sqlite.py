"""``SQLiteStore``: sessions in one SQLite file (stdlib ``sqlite3``, WAL), for the workers of one machine.

The file is created with mode 0600 (it holds handles and payloads). Records are laid out as
:mod:`livestate.store.layout` says: a config, a head and one row per unconfirmed message. A batch of writes
(every session the persistence flushes at once) is one ``BEGIN IMMEDIATE`` transaction. In WAL mode with
``synchronous=NORMAL`` a commit is a write to the WAL without an fsync, which survives the process being
killed (not a power cut: pass ``synchronous="FULL"`` for that).

Where the work runs (``writer``): batches are committed on the event loop itself (``"loop"``, the default
unless ``synchronous="FULL"``), on a connection of their own that never waits: it does not checkpoint (the
store's worker thread does, ten times a second: a checkpoint syncs the database file) and it does not wait for a
lock (when another connection or process holds the write lock, that batch goes to the worker thread, which
waits for it). A commit on the loop is then a few writes to the WAL, cheaper than handing the batch to a
thread and back (``bench/store.py`` measures both). Everything else (leases, loads, lists) runs on the worker
thread. ``"thread"`` (the default with ``synchronous="FULL"``, whose commits sync) commits every batch there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from livestate import wire
from livestate.record import SessionSnapshot
from livestate.store.base import (
    DEFAULT_BATCH_WINDOW,
    Append,
    Drop,
    Lease,
    LeaseLost,
    Op,
    SessionInfo,
    SessionLeased,
    StoredSession,
    StoreError,
    Trim,
    check_batch_window,
    checksum,
    decode_frame,
)
from livestate.store.layout import MessageRecord, Write, assemble, write_of

__all__ = ["SQLiteStore"]

logger = logging.getLogger("livestate.store")

#: The layout's version, kept in ``PRAGMA user_version``: a file of another version is refused, not misread.
_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    fence INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    lease_until REAL,
    head TEXT,
    head_sum TEXT,
    saved_at REAL,
    state TEXT,
    handle_fp TEXT,
    handle_at REAL,
    handle_ttl REAL
);
CREATE TABLE IF NOT EXISTS configs (
    id TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    sum TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
    id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    frame TEXT NOT NULL,
    entry TEXT NOT NULL,
    sum TEXT NOT NULL
);
-- A rowid table: a batch's messages are appended together to a few pages; clustered by session (a WITHOUT
-- ROWID table on (id, seq)) every session in a batch dirtied a page of its own: twice the cost per message.
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_seq ON messages (id, seq);
"""

T = TypeVar("T")


_STORE_HEAD = (
    "UPDATE sessions SET head=?, head_sum=?, saved_at=?, state=?, handle_ttl=?, "
    "handle_at=CASE WHEN handle_fp IS ? AND handle_at IS NOT NULL THEN handle_at ELSE ? END, "
    "handle_fp=? WHERE id=? AND fence=?"
)


def _head_row(write: Write) -> tuple[Any, ...]:
    head = write.head
    assert head is not None
    fp = head.handle_fingerprint
    return (
        head.text,
        checksum(head.text),
        head.saved_at,
        head.state,
        head.handle_ttl,
        fp,
        head.saved_at,
        fp,
        write.lease.session_id,
        write.lease.token,
    )


def _message_sum(frame: str, entry: str) -> str:
    return checksum(f"{entry}\n{frame}")


#: Seconds between checkpoints while batches are committed on the loop (whose connection does not checkpoint).
_CHECKPOINT_EVERY = 0.1


class _Busy(Exception):
    """The loop's connection found the write lock taken."""


def _busy(exc: sqlite3.OperationalError) -> bool:
    """Whether ``exc`` says the database is locked (``SQLITE_BUSY``, 5; the code is on errors from 3.11)."""
    return getattr(exc, "sqlite_errorcode", 5) == 5 and "locked" in str(exc)


def _connect(path: Path, synchronous: str, timeout: float) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, timeout=timeout, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    return db


def _stale(db: sqlite3.Connection, lease: Lease) -> LeaseLost | None:
    """``None`` if ``lease`` holds the session's latest token, else why its write is refused."""
    row = db.execute("SELECT fence FROM sessions WHERE id=?", (lease.session_id,)).fetchone()
    if row is not None and row[0] == lease.token:
        return None
    return LeaseLost(
        f"session {lease.session_id!r}: fencing token {lease.token} is stale "
        f"(latest {None if row is None else row[0]}): another worker took it over"
    )


def _head_is(db: sqlite3.Connection, row: tuple[Any, ...]) -> bool:
    """Whether the head of ``row`` (``_head_row``) is what the session now holds."""
    found = db.execute("SELECT head FROM sessions WHERE id=? AND fence=?", row[-2:]).fetchone()
    return found is not None and found[0] == row[0]


def _fences(db: sqlite3.Connection, session_ids: Sequence[str]) -> dict[str, int]:
    """The fencing token of each session (those not stored are missing)."""
    fences: dict[str, int] = {}
    for start in range(0, len(session_ids), 500):  # SQLite takes a bounded number of parameters
        chunk = session_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        fences.update(db.execute(f"SELECT id, fence FROM sessions WHERE id IN ({marks})", chunk))
    return fences


def _apply(db: sqlite3.Connection, writes: Sequence[Write]) -> None:
    """The writes' operations and configs (their heads are already stored). Every message of the batch
    goes in one statement first: a trim or drop in the same write only ever names older seqs or seqs
    appended before it, so doing them after the appends changes nothing."""
    db.executemany(
        "INSERT OR REPLACE INTO messages (id, seq, frame, entry, sum) VALUES (?, ?, ?, ?, ?)",
        [
            (w.lease.session_id, op.seq, op.frame, op.entry or "", _message_sum(op.frame, op.entry or ""))
            for w in writes
            for op in w.ops
            if type(op) is Append
        ],
    )
    for write in writes:
        sid = write.lease.session_id
        for op in write.ops:
            if type(op) is Trim:
                db.execute("DELETE FROM messages WHERE id=? AND seq<=?", (sid, op.seq))
            elif type(op) is Drop:
                db.executemany("DELETE FROM messages WHERE id=? AND seq=?", [(sid, s) for s in op.seqs])
        if write.config is not None:  # a table of its own: rewriting a row rewrites all of it
            db.execute(
                "INSERT OR REPLACE INTO configs (id, config, sum) VALUES (?, ?, ?)",
                (sid, write.config, checksum(write.config)),
            )


class SQLiteStore:
    """A :class:`~livestate.store.SessionStore` in the SQLite file at ``path`` (created mode 0600).

    ``clock`` gives wall-clock seconds for leases (``time.time``; every worker must share it, as on one
    machine). ``writer``: where batches are committed, ``"loop"`` or ``"thread"`` (see the module's text;
    ``None``: ``"thread"`` with ``synchronous="FULL"``, else ``"loop"``). Safe for several processes at once;
    one instance belongs to one event loop."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "NORMAL",
        clock: Callable[[], float] | None = None,
        writer: str | None = None,
        batch_window: float = DEFAULT_BATCH_WINDOW,
    ) -> None:
        self.path = Path(path)
        self.batch_window = check_batch_window(batch_window)
        if synchronous not in ("OFF", "NORMAL", "FULL"):
            raise StoreError(f"synchronous must be OFF, NORMAL or FULL, got {synchronous!r}")
        if writer is None:
            writer = "thread" if synchronous == "FULL" else "loop"
        if writer not in ("thread", "loop"):
            raise StoreError(f"writer must be 'thread' or 'loop', got {writer!r}")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        self._clock = clock or time.time
        self._db = _connect(self.path, synchronous, timeout=10.0)  # the worker thread's
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        tables = self._db.execute("SELECT count(*) FROM sqlite_master WHERE name='sessions'").fetchone()[0]
        if tables and version != _VERSION:
            self._db.close()
            raise StoreError(
                f"{self.path} holds sessions in layout {version}, this livestate reads layout {_VERSION}: "
                "resume them with the livestate that stored them, or use another file"
            )
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={_VERSION}")
        self._thread = ThreadPoolExecutor(1, "livestate-sqlite")
        #: The loop's own connection for batches (``writer="loop"``): no waiting for locks, no checkpoints.
        self._loop_db: sqlite3.Connection | None = None
        if writer == "loop":
            self._loop_db = _connect(self.path, synchronous, timeout=0.0)
            self._loop_db.execute("PRAGMA wal_autocheckpoint=0")
        self._checkpoint_after = 0.0  # time.monotonic() after which the next loop commit asks for one

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    @contextlib.contextmanager
    def _transaction(self, db: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        """A write transaction on the worker thread's connection (or ``db``: the loop's, which raises
        ``_Busy`` at once instead of waiting for the write lock)."""
        db = self._db if db is None else db
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if db is not self._db and _busy(exc):
                raise _Busy from None
            raise
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # --- leases -------------------------------------------------------------------------------------

    async def acquire(self, session_id: str, owner: str, ttl: float) -> Lease:
        """Take the lease (``SessionLeased`` if another owner holds an unexpired one)."""
        return await self._call(self._acquire, session_id, owner, ttl)

    def _acquire(self, session_id: str, owner: str, ttl: float) -> Lease:
        now = self._clock()
        with self._transaction() as db:
            row = db.execute(
                "SELECT fence, owner, lease_until FROM sessions WHERE id=?", (session_id,)
            ).fetchone()
            if row is None:
                token = 1
                db.execute(
                    "INSERT INTO sessions (id, fence, owner, lease_until) VALUES (?, ?, ?, ?)",
                    (session_id, token, owner, now + ttl),
                )
            else:
                fence, holder, until = row
                if holder is not None and holder != owner and until is not None and until > now:
                    raise SessionLeased(session_id, holder, until - now)
                token = fence + 1
                db.execute(
                    "UPDATE sessions SET fence=?, owner=?, lease_until=? WHERE id=?",
                    (token, owner, now + ttl, session_id),
                )
        return Lease(session_id=session_id, owner=owner, token=token, ttl=ttl)

    async def renew(self, lease: Lease) -> None:
        """Extend the lease by its ttl (``LeaseLost`` if the token is stale)."""
        await self._call(self._renew, lease)

    def _renew(self, lease: Lease) -> None:
        with self._transaction() as db:
            stale = _stale(db, lease)
            if stale is not None:
                raise stale
            db.execute(
                "UPDATE sessions SET lease_until=? WHERE id=?", (self._clock() + lease.ttl, lease.session_id)
            )

    async def release(self, lease: Lease) -> None:
        """Give the lease up, if still ours."""
        await self._call(self._release, lease)

    def _release(self, lease: Lease) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE sessions SET owner=NULL, lease_until=NULL WHERE id=? AND fence=?",
                (lease.session_id, lease.token),
            )

    # --- records --------------------------------------------------------------------------------

    async def write(
        self, lease: Lease, ops: Sequence[Op], snapshot: SessionSnapshot | None, *, saved_at: float
    ) -> None:
        """Apply ``ops`` and store ``snapshot`` in one transaction, if ``lease`` is still the latest."""
        (refused,) = await self.write_batch([write_of(lease, ops, snapshot, saved_at)])
        if refused is not None:
            raise refused

    async def write_batch(self, writes: Sequence[Write]) -> list[StoreError | None]:
        """Every session's write in one transaction; a stale one is refused, the others apply."""
        if self._loop_db is not None:
            try:
                results = self._write_batch(writes, self._loop_db)
            except _Busy:  # another connection holds the write lock: the worker thread waits for it
                pass
            else:
                if time.monotonic() >= self._checkpoint_after:
                    self._checkpoint_after = time.monotonic() + _CHECKPOINT_EVERY
                    self._thread.submit(self._checkpoint)
                return results
        return await self._call(self._write_batch, writes)

    def _checkpoint(self) -> None:
        """Copy the WAL into the database file (without waiting for writers: they go on meanwhile)."""
        try:
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:  # the next one will catch up; the WAL only grows meanwhile
            logger.warning("%r: checkpoint failed: %r", self, exc)

    def _write_batch(
        self, writes: Sequence[Write], connection: sqlite3.Connection | None = None
    ) -> list[StoreError | None]:
        with self._transaction(connection) as db:
            # The heads' update checks each token itself (one statement fewer per session); a session whose
            # head updated nothing has a stale token (or is gone): ``_stale`` says which. A write without a
            # head (plain sends only) has its token read with the others', in one query.
            heads = [(w, _head_row(w)) for w in writes if w.head is not None]
            updated = db.executemany(_STORE_HEAD, [row for _, row in heads]).rowcount if heads else 0
            fences = _fences(db, [w.lease.session_id for w in writes if w.head is None])
            stored = {id(w) for w, row in heads if updated == len(heads) or _head_is(db, row)} | {
                id(w) for w in writes if w.head is None and fences.get(w.lease.session_id) == w.lease.token
            }
            results: list[StoreError | None] = [
                None if id(w) in stored else _stale(db, w.lease) for w in writes
            ]
            fresh = [w for w, refused in zip(writes, results, strict=True) if refused is None]
            _apply(db, fresh)
        return results

    def _records(self, session_id: str) -> list[MessageRecord]:
        records = []
        for seq, frame, entry, digest in self._db.execute(
            "SELECT seq, frame, entry, sum FROM messages WHERE id=? ORDER BY seq", (session_id,)
        ):
            if _message_sum(frame, entry) != digest:
                raise StoreError(f"session {session_id!r}: message seq {seq} is corrupt: checksum mismatch")
            records.append(MessageRecord(seq=seq, frame=frame, entry=entry))
        return records

    async def load(self, session_id: str) -> StoredSession | None:
        """The checked snapshot and buffer (``None`` before the first snapshot)."""
        return await self._call(self._load, session_id)

    def _load(self, session_id: str) -> StoredSession | None:
        self._db.execute("BEGIN")
        try:
            row = self._db.execute(
                "SELECT c.config, c.sum, s.head, s.head_sum, s.saved_at "
                "FROM sessions s LEFT JOIN configs c ON c.id = s.id WHERE s.id=?",
                (session_id,),
            ).fetchone()
            if row is None or row[2] is None:
                return None
            config, config_sum, head, head_sum, saved_at = row
            records = self._records(session_id)
        finally:
            self._db.execute("COMMIT")
        if config is None or checksum(config) != config_sum:
            raise StoreError(f"session {session_id!r}: the config record is corrupt: checksum mismatch")
        if checksum(head) != head_sum:
            raise StoreError(f"session {session_id!r}: the head record is corrupt: checksum mismatch")
        if type(saved_at) is not float:
            raise StoreError(f"session {session_id!r}: saved_at is missing or not a number")
        return assemble(session_id, config, head, saved_at, records)

    async def stamp(self, session_id: str) -> str | None:
        """The head's checksum and time, and the last stored seq: one of them changes with every write (a
        write without the head appends a message)."""
        row = await self._call(
            lambda: self._db.execute(
                "SELECT head_sum, saved_at, (SELECT max(seq) FROM messages WHERE id=?1) FROM sessions WHERE id=?1",
                (session_id,),
            ).fetchone()
        )
        return None if row is None or row[0] is None else f"{row[0]}@{row[1]!r}@{row[2]}"

    async def unconfirmed(self, session_id: str) -> list[tuple[int, wire.ClientMessage]]:
        """The stored unconfirmed messages, oldest first."""
        records = await self._call(self._records, session_id)
        return [(r.seq, decode_frame(session_id, r.seq, r.frame)) for r in records]

    async def list_sessions(self) -> list[SessionInfo]:
        """Every session, by id (handles as fingerprints only)."""
        now = self._clock()
        rows = await self._call(
            lambda: self._db.execute(
                "SELECT s.id, s.state, s.handle_fp, s.saved_at, s.handle_at, s.owner, s.lease_until, "
                "(SELECT COUNT(*) FROM messages m WHERE m.id = s.id) FROM sessions s ORDER BY s.id"
            ).fetchall()
        )
        return [
            SessionInfo(
                session_id=sid,
                state=state,
                handle_fingerprint=fp,
                saved_at=saved_at,
                handle_at=handle_at,
                messages=count,
                owner=owner if until is not None and until > now else None,
                lease_left=until - now if owner is not None and until is not None and until > now else None,
            )
            for sid, state, fp, saved_at, handle_at, owner, until, count in rows
        ]

    async def delete(self, session_id: str) -> bool:
        """Forget the session."""
        return await self._call(self._delete, session_id)

    def _delete(self, session_id: str) -> bool:
        with self._transaction() as db:
            gone = db.execute("DELETE FROM sessions WHERE id=?", (session_id,)).rowcount
            db.execute("DELETE FROM configs WHERE id=?", (session_id,))
            db.execute("DELETE FROM messages WHERE id=?", (session_id,))
        return gone > 0

    async def expire(self, now: float | None = None) -> list[str]:
        """Delete unleased sessions whose handle is older than ``handle_ttl``."""
        return await self._call(self._expire, self._clock() if now is None else now)

    def _expire(self, now: float) -> list[str]:
        with self._transaction() as db:
            ids = [
                sid
                for (sid,) in db.execute(
                    "SELECT id FROM sessions WHERE handle_ttl IS NOT NULL "
                    "AND COALESCE(handle_at, saved_at) + handle_ttl < ? "
                    "AND (lease_until IS NULL OR lease_until < ?) ORDER BY id",
                    (now, now),
                )
            ]
            for sid in ids:
                for table in ("sessions", "configs", "messages"):
                    db.execute(f"DELETE FROM {table} WHERE id=?", (sid,))
        return ids

    async def close(self) -> None:
        """Close the database connections (the worker thread's after its last call)."""
        if self._loop_db is not None:
            self._loop_db.close()
        await self._call(self._db.close)
        self._thread.shutdown(wait=False)
