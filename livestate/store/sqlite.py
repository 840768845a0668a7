"""``SQLiteStore``: sessions in one SQLite file (stdlib ``sqlite3``, WAL), for the workers of one machine.

The file is created with mode 0600 (it holds handles and payloads). Writes run on the calling thread inside
one ``BEGIN IMMEDIATE`` transaction per batch: in WAL mode with ``synchronous=NORMAL`` a commit is a write to
the WAL without an fsync, which survives the process being killed (not a power cut: pass
``synchronous="FULL"`` for that). ``bench/store.py`` measures the cost per client message.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from livestate import wire
from livestate.journal import snapshot_to_json
from livestate.session import SessionSnapshot
from livestate.store.base import (
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
    check,
    checksum,
    decode_frame,
    decode_snapshot,
    handle_fingerprint,
)

__all__ = ["SQLiteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    fence INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    lease_until REAL,
    snapshot TEXT,
    snapshot_sum TEXT,
    saved_at REAL,
    state TEXT,
    handle_fp TEXT,
    handle_at REAL,
    handle_ttl REAL
);
CREATE TABLE IF NOT EXISTS messages (
    id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    frame TEXT NOT NULL,
    sum TEXT NOT NULL,
    PRIMARY KEY (id, seq)
) WITHOUT ROWID;
"""


class SQLiteStore:
    """A :class:`~livestate.store.SessionStore` in the SQLite file at ``path`` (created mode 0600).

    ``clock`` gives wall-clock seconds for leases (``time.time``; every worker must share it, as on one
    machine). Safe for several processes at once; one instance belongs to one event loop thread."""

    def __init__(
        self, path: str | os.PathLike[str], *, synchronous: str = "NORMAL", clock: Any = None
    ) -> None:
        self.path = Path(path)
        if synchronous not in ("OFF", "NORMAL", "FULL"):
            raise StoreError(f"synchronous must be OFF, NORMAL or FULL, got {synchronous!r}")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        self._clock = clock or time.time
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.executescript(_SCHEMA)

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # --- leases -------------------------------------------------------------------------------------

    async def acquire(self, session_id: str, owner: str, ttl: float) -> Lease:
        """Take the lease (``SessionLeased`` if another owner holds an unexpired one)."""
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

    def _check_token(self, db: sqlite3.Connection, lease: Lease) -> None:
        row = db.execute("SELECT fence FROM sessions WHERE id=?", (lease.session_id,)).fetchone()
        if row is None or row[0] != lease.token:
            raise LeaseLost(
                f"session {lease.session_id!r}: fencing token {lease.token} is stale "
                f"(latest {None if row is None else row[0]}): another worker took it over"
            )

    async def renew(self, lease: Lease) -> None:
        """Extend the lease by its ttl (``LeaseLost`` if the token is stale)."""
        with self._transaction() as db:
            self._check_token(db, lease)
            db.execute(
                "UPDATE sessions SET lease_until=? WHERE id=?", (self._clock() + lease.ttl, lease.session_id)
            )

    async def release(self, lease: Lease) -> None:
        """Give the lease up, if still ours."""
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
        self.write_now(lease, ops, snapshot, saved_at=saved_at)

    def write_now(
        self, lease: Lease, ops: Sequence[Op], snapshot: SessionSnapshot | None, *, saved_at: float
    ) -> None:
        """:meth:`write`, synchronously (the executor's write-ahead calls this on the event loop)."""
        sid = lease.session_id
        with self._transaction() as db:
            self._check_token(db, lease)
            for op in ops:
                if type(op) is Append:
                    db.execute(
                        "INSERT OR REPLACE INTO messages (id, seq, frame, sum) VALUES (?, ?, ?, ?)",
                        (sid, op.seq, op.frame, checksum(op.frame)),
                    )
                elif type(op) is Trim:
                    db.execute("DELETE FROM messages WHERE id=? AND seq<=?", (sid, op.seq))
                elif type(op) is Drop:
                    db.executemany("DELETE FROM messages WHERE id=? AND seq=?", [(sid, s) for s in op.seqs])
            if snapshot is not None:
                text = snapshot_to_json(snapshot)
                fp = handle_fingerprint(snapshot)
                db.execute(
                    "UPDATE sessions SET snapshot=?, snapshot_sum=?, saved_at=?, state=?, handle_ttl=?, "
                    "handle_at=CASE WHEN handle_fp IS ? THEN handle_at ELSE ? END, handle_fp=? WHERE id=?",
                    (
                        text,
                        checksum(text),
                        saved_at,
                        snapshot.state.name,
                        snapshot.config.handle_ttl,
                        fp,
                        saved_at,
                        fp,
                        sid,
                    ),
                )

    def _items(self, session_id: str) -> list[tuple[int, wire.ClientMessage]]:
        items = []
        for seq, frame, digest in self._db.execute(
            "SELECT seq, frame, sum FROM messages WHERE id=? ORDER BY seq", (session_id,)
        ):
            if checksum(frame) != digest:
                raise StoreError(f"session {session_id!r}: message seq {seq} is corrupt: checksum mismatch")
            items.append((seq, decode_frame(session_id, seq, frame)))
        return items

    async def load(self, session_id: str) -> StoredSession | None:
        """The checked snapshot and buffer (``None`` before the first snapshot)."""
        self._db.execute("BEGIN")
        try:
            row = self._db.execute(
                "SELECT snapshot, snapshot_sum, saved_at FROM sessions WHERE id=?", (session_id,)
            ).fetchone()
            if row is None or row[0] is None:
                return None
            text, digest, saved_at = row
            if checksum(text) != digest:
                raise StoreError(f"session {session_id!r}: the snapshot is corrupt: checksum mismatch")
            snapshot = decode_snapshot(session_id, text)
            items = self._items(session_id)
        finally:
            self._db.execute("COMMIT")
        return check(session_id, snapshot, items, saved_at)

    async def unconfirmed(self, session_id: str) -> list[tuple[int, wire.ClientMessage]]:
        """The stored unconfirmed messages, oldest first."""
        return self._items(session_id)

    async def list_sessions(self) -> list[SessionInfo]:
        """Every session, by id (handles as fingerprints only)."""
        now = self._clock()
        rows = self._db.execute(
            "SELECT s.id, s.state, s.handle_fp, s.saved_at, s.handle_at, s.owner, s.lease_until, "
            "(SELECT COUNT(*) FROM messages m WHERE m.id = s.id) FROM sessions s ORDER BY s.id"
        ).fetchall()
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
        with self._transaction() as db:
            gone = db.execute("DELETE FROM sessions WHERE id=?", (session_id,)).rowcount
            db.execute("DELETE FROM messages WHERE id=?", (session_id,))
        return gone > 0

    async def expire(self, now: float | None = None) -> list[str]:
        """Delete unleased sessions whose handle is older than ``handle_ttl``."""
        now = self._clock() if now is None else now
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
                db.execute("DELETE FROM sessions WHERE id=?", (sid,))
                db.execute("DELETE FROM messages WHERE id=?", (sid,))
        return ids

    async def close(self) -> None:
        """Close the database connection."""
        self._db.close()
