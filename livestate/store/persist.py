"""How a driver keeps its session in a store: :class:`StorePersistence` (the executor's write-ahead hook)
and :func:`resuming` (take a session over in any process).

The executor hands every batch of commands to :meth:`StorePersistence.observe`, which turns buffer commands
into store operations and marks the snapshot dirty; a flush is scheduled for the next loop tick (one store
write per tick, however many messages), and the writer awaits :meth:`StorePersistence.flush` before any
client message goes on the wire: a message is in the store before the server can see it. The lease is
renewed every third of its ttl; when the store refuses the token (``LeaseLost``) the session is closed here,
since another worker carries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from livestate import commands as c
from livestate.buffer import ReplayBuffer
from livestate.session import Session, SessionSnapshot
from livestate.store.base import (
    Append,
    Drop,
    Lease,
    LeaseLost,
    Op,
    SessionLeased,
    SessionStore,
    StoredSession,
    StoreError,
    Trim,
    default_owner,
    encode_frame,
)

__all__ = ["DEFAULT_LEASE_TTL", "StorePersistence", "resuming", "take_over"]

logger = logging.getLogger("livestate.store")

#: Seconds a lease lasts without renewal: how long a crashed worker's session waits before a takeover.
DEFAULT_LEASE_TTL = 10.0


class _Host(Protocol):
    session: Session
    buffer: ReplayBuffer

    async def close(self) -> Any: ...


class StorePersistence:
    """One session's link to a store: its lease, the operations not yet written, the renewal task."""

    def __init__(
        self,
        store: SessionStore,
        session_id: str,
        *,
        owner: str | None = None,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        lease: Lease | None = None,
    ) -> None:
        self.store = store
        self.session_id = session_id
        self.owner = owner or default_owner()
        self.lease_ttl = lease_ttl
        #: The held lease (``None`` until :meth:`start`).
        self.lease = lease
        self.restored = lease is not None
        self._sync = getattr(store, "write_now", None)
        self._host: _Host | None = None
        self._ops: list[Op] = []
        self._dirty = False
        self._generation = -1
        self._scheduled = False
        self._lock = asyncio.Lock()
        self._renewing: asyncio.Task[None] | None = None
        self.lost: LeaseLost | None = None

    async def start(self, host: _Host) -> None:
        """Take the lease (``SessionLeased`` if another worker holds it) and write the first snapshot.
        ``StoreError`` if a new session's id is already stored (resume it, or drop it)."""
        self._host = host
        if self.lease is None:
            self.lease = await self.store.acquire(self.session_id, self.owner, self.lease_ttl)
            try:
                if await self.store.load(self.session_id) is not None:
                    raise StoreError(
                        f"session {self.session_id!r} is already stored: resume it, or drop it first"
                    )
            except StoreError:
                await self.store.release(self.lease)
                raise
        self._ops = (
            [Append(seq=s, frame=encode_frame(m)) for s, m in host.buffer.items()]
            if not self.restored
            else []
        )
        self._dirty = True
        await self.flush()
        self._renewing = asyncio.ensure_future(self._renew())

    def observe(self, session: Session, out: tuple[c.Command, ...]) -> None:
        """Record what a batch of commands changed (called by the executor before carrying them out)."""
        if self.lost is not None or self.lease is None:
            return
        ops = self._ops
        for command in out:
            if isinstance(command, c.BufferMessage):
                ops.append(Append(seq=command.seq, frame=encode_frame(command.message)))
            elif isinstance(command, c.TrimToIndex):
                ops.append(Trim(seq=command.seq))
            elif isinstance(command, (c.TrimSeqs, c.DropBuffered)):
                ops.append(Drop(seqs=tuple(command.seqs)))
        if out or session.handle_generation != self._generation:
            self._generation = session.handle_generation
            self._dirty = True
            if not self._scheduled:
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._kick)

    def _kick(self) -> None:
        self._scheduled = False
        if self._dirty and self.lost is None:
            task = asyncio.ensure_future(self.flush())
            task.add_done_callback(_swallow)

    async def flush(self) -> None:
        """Write every recorded operation and the current snapshot; return once they are stored.
        ``LeaseLost`` once another worker took the session over."""
        async with self._lock:  # one write at a time, in order; waiters find their ops already written
            while True:
                if self.lost is not None:
                    raise self.lost
                if not self._dirty or self._host is None or self.lease is None:
                    return
                ops, self._ops, self._dirty = self._ops, [], False
                snapshot = self._host.session.snapshot()
                try:
                    if self._sync is not None:
                        self._sync(self.lease, ops, snapshot, saved_at=time.time())
                    else:
                        await self.store.write(self.lease, ops, snapshot, saved_at=time.time())
                except LeaseLost as exc:
                    self._on_lost(exc)
                    raise
                except BaseException:
                    self._ops[:0] = ops  # not written: try again with the next flush
                    self._dirty = True
                    raise

    def _on_lost(self, exc: LeaseLost) -> None:
        if self.lost is not None:
            return
        self.lost = exc
        logger.warning("session %s: %s; closing it here", self.session_id, exc)
        if self._host is not None:
            task = asyncio.ensure_future(self._host.close())
            task.add_done_callback(_swallow)

    async def _renew(self) -> None:
        assert self.lease is not None
        while self.lost is None:
            await asyncio.sleep(self.lease_ttl / 3)
            try:
                await self.store.renew(self.lease)
            except LeaseLost as exc:
                self._on_lost(exc)
                return
            except Exception as exc:  # the store is unreachable: try again; writes will say if it lasts
                logger.warning("session %s: renewing the lease failed: %r", self.session_id, exc)

    async def stop(self) -> None:
        """The session was closed: write what is pending, then forget it in the store (the application got
        every unconfirmed message back) and give the lease up."""
        if self._renewing is not None:
            self._renewing.cancel()
        if self.lost is not None or self.lease is None:
            return
        with contextlib.suppress(LeaseLost):
            await self.flush()
            await self.store.delete(self.session_id)


def _swallow(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.debug("store write failed: %r", task.exception())


async def take_over(
    store: SessionStore,
    session_id: str,
    *,
    owner: str | None = None,
    lease_ttl: float = DEFAULT_LEASE_TTL,
    wait: float = 0.0,
) -> tuple[StorePersistence, StoredSession]:
    """Take the session's lease, waiting up to ``wait`` seconds for a dead worker's lease to lapse, and load
    its checked snapshot and buffer. ``SessionLeased`` if a live worker still holds it after ``wait``;
    ``StoreError`` (lease released) if it is not stored or its records are corrupt."""
    owner = owner or default_owner()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        try:
            lease = await store.acquire(session_id, owner, lease_ttl)
            break
        except SessionLeased as leased:
            left = deadline - loop.time()
            if left <= 0:
                raise
            await asyncio.sleep(min(leased.expires_in + 0.01, left, 0.5))
    try:
        stored = await store.load(session_id)
        if stored is None:
            raise StoreError(f"session {session_id!r} has no snapshot in the store")
    except BaseException:
        await store.release(lease)
        raise
    return StorePersistence(store, session_id, owner=owner, lease_ttl=lease_ttl, lease=lease), stored


E = TypeVar("E", bound=_Host)


class resuming(Generic[E]):
    """``async with``: take the session over (:func:`take_over`), build the driver with ``make(config,
    restore=..., restored_after=..., store=..., session_id=...)``, start it (it reconnects with the stored
    handle and replays exactly the unconfirmed messages), close it on exit."""

    def __init__(
        self,
        store: SessionStore,
        session_id: str,
        make: Callable[..., E],
        *,
        owner: str | None = None,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        wait: float = 0.0,
    ) -> None:
        self._args = (store, session_id)
        self._make = make
        self._options = {"owner": owner, "lease_ttl": lease_ttl, "wait": wait}
        self._live: E | None = None

    async def __aenter__(self) -> E:
        store, session_id = self._args
        persistence, stored = await take_over(store, session_id, **self._options)  # type: ignore[arg-type]
        self._live = self._make(
            stored.snapshot.config,
            restore=(stored.snapshot, stored.buffer),
            restored_after=max(0.0, time.time() - stored.saved_at),
            store=persistence,
            session_id=session_id,
        )
        await self._live.start()  # type: ignore[attr-defined]
        return self._live

    async def __aexit__(self, *_: object) -> None:
        assert self._live is not None
        await self._live.close()


_ = (SessionSnapshot, SessionLeased)
