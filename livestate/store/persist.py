"""How a driver keeps its session in a store: :class:`StorePersistence` (the executor's write-ahead hook)
and :func:`resuming` (take a session over in any process).

The executor hands every batch of commands to :meth:`StorePersistence.observe`, which turns buffer commands
into store operations (the message's frame encoded there and then) and marks the session dirty. One flusher
per store and event loop gathers every dirty session and writes them all with one
``SessionStore.write_batch`` (one SQLite transaction, one Redis round trip), batches starting at least the
store's ``batch_window`` apart: a write after a quiet spell goes on the next loop tick, and under load every
session that became dirty meanwhile shares the next batch. Each session's write is its operations and its
head (:mod:`livestate.store.layout`): what changed, not what it holds; a write of plain sends alone carries no
head (the last message record carries the hot fields). The writer awaits
:meth:`StorePersistence.flush` before any client message goes on the wire: a message is in the store before
the server can see it. The lease is renewed every third of its ttl; when the store refuses the token
(``LeaseLost``) the session fails here (its messages handed back), since another worker carries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import weakref
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from livestate import commands as c
from livestate import window, wire
from livestate.buffer import ReplayBuffer
from livestate.events import Event, MessageReceived
from livestate.journal import fingerprint
from livestate.session import Session
from livestate.snapshots import hot_fields
from livestate.store.base import (
    DEFAULT_BATCH_WINDOW,
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
from livestate.store.layout import (
    Write,
    encode_config,
    encode_tail_entry,
    head_of,
    window_order,
    with_entries,
)

__all__ = ["DEFAULT_LEASE_TTL", "StorePersistence", "resuming", "take_over"]

logger = logging.getLogger("livestate.store")

#: Seconds a lease lasts without renewal: how long a crashed worker's session waits before a takeover.
DEFAULT_LEASE_TTL = 10.0


class _Host(Protocol):
    session: Session
    buffer: ReplayBuffer

    async def close(self) -> Any: ...


class _Flusher:
    """Writes every dirty session of one store, on one event loop, one batch at a time, batches starting at
    least ``store.batch_window`` apart: under load many sessions share one commit (or round trip), while a
    write after a quiet spell starts at once."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store
        # A store written against the protocol before it had ``batch_window`` gets the default.
        self.window: float = getattr(store, "batch_window", DEFAULT_BATCH_WINDOW)
        self.dirty: dict[StorePersistence, None] = {}
        self.scheduled = False
        self.running: asyncio.Task[None] | None = None
        self.next_start = -math.inf  # loop time before which the next batch does not start

    def want(self, persistence: StorePersistence) -> None:
        self.dirty[persistence] = None
        if not self.scheduled and self.running is None:
            self._schedule(asyncio.get_running_loop())

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        self.scheduled = True
        if self.next_start > loop.time():
            loop.call_at(self.next_start, self._start)
        else:
            loop.call_soon(self._start)

    def _start(self) -> None:
        self.scheduled = False
        if self.running is None and self.dirty:
            self.running = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.dirty:
                wait = self.next_start - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                self.next_start = loop.time() + self.window
                batch, self.dirty = list(self.dirty), {}
                taken = []
                for p in batch:
                    try:
                        w = p._take()
                    except Exception as exc:  # this session's write cannot be made: the others still go
                        p._not_taken(exc)
                        continue
                    if w is not None:
                        taken.append((p, w))
                if not taken:
                    continue
                writes = [w for _, w in taken]
                try:
                    results = await self.store.write_batch(writes)
                except BaseException as exc:
                    for persistence, write in taken:
                        persistence._not_written(write, exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (persistence, write), refused in zip(taken, results, strict=True):
                    try:
                        persistence._written(write, refused)
                    except Exception:  # a failing on_lost hook must not leave the other sessions waiting
                        logger.exception("session %s: after its store write", persistence.session_id)
        finally:
            self.running = None
            if self.dirty and not self.scheduled:
                self._schedule(loop)


#: One flusher per event loop and store.
_FLUSHERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, _Flusher]] = (
    weakref.WeakKeyDictionary()
)


def _flusher(store: SessionStore) -> _Flusher:
    flushers = _FLUSHERS.setdefault(asyncio.get_running_loop(), {})
    flusher = flushers.get(id(store))
    if flusher is None or flusher.store is not store:
        flusher = flushers[id(store)] = _Flusher(store)
    return flusher


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
        #: Set once the store refused this worker's token: another worker carries the session.
        self.lost: LeaseLost | None = None
        self._host: _Host | None = None
        self._on_lost: Callable[[str], None] | None = None
        self._ops: list[Op] = []
        self._config: str | None = None
        self._dirty = False
        self._pending: _Waiters | None = None  # who waits for the changes not yet taken
        self._inflight: _Waiters | None = None  # who waits for the write in flight
        self._written_head: str | None = None
        self._inflight_head: str | None = None
        self._inflight_appends = False
        self._generation = -1
        self._handle_fp = ("", "")
        self._disordered = False  # the window is not in seq order (a re-seed went out ahead of held input)
        self._renewing: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flusher: _Flusher | None = None  # of that loop
        self._head_stale = True  # the next write must carry the head (else plain sends may go without it)
        self._progressed = False  # as in the head last taken
        self._last_send = (-1, 0)  # the last plain send's seq and size

    async def start(self, host: _Host, on_lost: Callable[[str], None] | None = None) -> None:
        """Take the lease (``SessionLeased`` if another worker holds it) and write the session's records.
        ``StoreError`` if a new session's id is already stored (resume it, or drop it). ``on_lost(reason)``
        is called once if the store later refuses this worker's token."""
        self._host = host
        self._on_lost = on_lost
        if self.lease is None:
            self.lease = await self.store.acquire(self.session_id, self.owner, self.lease_ttl)
            try:
                if await self.store.load(self.session_id) is not None:
                    raise StoreError(
                        f"session {self.session_id!r} is already stored: resume it, or drop it first"
                    )
            except BaseException:
                lease, self.lease = self.lease, None  # not ours to write: close() must leave it alone
                await self.store.release(lease)
                raise
            self._config = encode_config(host.session.config)
            self._ops = [Append(seq=s, frame=encode_frame(m)) for s, m in host.buffer.items()]
        else:  # a session taken over: its window may be out of seq order already (the head names it)
            seqs = list(host.session.unconfirmed_seqs)
            self._disordered = seqs != sorted(seqs)
        self._mark_dirty()
        if not self.restored:
            await self.flush()
        # A session taken over is already stored: its first write goes while it dials, and the first replayed
        # message waits for it like every message does.
        self._renewing = asyncio.ensure_future(self._renew())

    def observe(self, session: Session, out: tuple[c.Command, ...], event: Event | None = None) -> None:
        """Record what handling ``event`` changed, ``out`` its commands (called by the executor before
        carrying them out). An event without commands can change the session too (a tool call, a handle
        that trims nothing): it is written as well, except server content, the bulk of the frames, whose
        only lasting change (a turn opened) is written with the next write or the next lease renewal."""
        if self.lost is not None or self.lease is None:
            return
        if not out:
            if (
                session.handle_generation == self._generation
                and type(event) is MessageReceived
                and type(event.message) is wire.ServerContent
            ):
                return
            self._head_stale = True
            self._mark_dirty()
            return
        self._generation = session.handle_generation
        if (
            len(out) == 2
            and type(send := out[0]) is c.SendMessage
            and type(buffered := out[1]) is c.BufferMessage
            and send.seq == buffered.seq
            and type(buffered.message) is not wire.ToolResponse
            and hot_fields(session).last_in_window == buffered.seq  # not put ahead of held input
        ):  # a plain send: unless more changed by the next write, that write needs no head (layout's tail)
            size = window.approximate_size(buffered.message)
            self._ops.append(
                Append(seq=buffered.seq, frame=encode_frame(buffered.message), entry=f"[{size}]")
            )
            self._last_send = (buffered.seq, size)
            self._mark_dirty()
            return
        self._head_stale = True
        ops = self._ops
        for command in out:
            match command:
                case c.BufferMessage(seq=seq, message=message):
                    ops.append(Append(seq=seq, frame=encode_frame(message)))
                case c.TrimThrough(seq=seq):
                    ops.append(Trim(seq=seq))
                case c.TrimSeqs(seqs=seqs) | c.DropBuffered(seqs=seqs):
                    ops.append(Drop(seqs=tuple(seqs)))
        self._mark_dirty()

    def _mark_dirty(self) -> None:
        if not self._dirty:
            self._dirty = True
            loop, flusher = asyncio.get_running_loop(), self._flusher
            if flusher is None or self._loop is not loop:  # looked up once per loop (a weak mapping is slow)
                self._loop, flusher = loop, _flusher(self.store)
                self._flusher = flusher
            flusher.want(self)

    def _take(self) -> Write | None:
        """The write of every change since the last one (``None`` if nothing changed), from now on in flight."""
        self._dirty = False
        if self._host is None or self.lease is None or self.lost is not None:
            _settle(self._pending, self.lost)
            self._pending = None
            return None
        if not self._head_stale and self._config is None:
            tail = self._tail(self._host.session)
            if tail is not None:
                return tail
        self._head_stale = False
        snapshot = self._host.session.snapshot()
        ops, disordered = with_entries(self._ops, snapshot)
        self._disordered = self._disordered or disordered
        order = window_order(snapshot) if self._disordered else None
        self._disordered = order is not None
        head = head_of(snapshot, time.time(), order, self._fingerprint)
        self._generation = snapshot.handle_generation
        self._progressed = snapshot.progressed
        if not ops and self._config is None and head.text == self._written_head:
            _settle(self._pending, None)
            self._pending = None
            return None
        self._ops = []
        self._inflight = self._pending or _Waiters()
        self._pending = None
        self._inflight_head = head.text
        self._inflight_appends = any(type(op) is Append for op in ops)
        return Write(lease=self.lease, ops=tuple(ops), head=head, config=self._config)

    def _tail(self, session: Session) -> Write | None:
        """The write of plain sends alone, without the head (``None``: the head must go too). The last
        message's entry carries the hot fields, read now: server content since may have moved the turn."""
        ops = self._ops
        last = ops[-1] if ops else None
        last_seq, size = self._last_send
        if type(last) is not Append or last.seq != last_seq:
            return None
        hot = hot_fields(session)
        if hot.seq != last_seq or hot.last_in_window != last_seq or hot.progressed != self._progressed:
            return None  # something else moved too (the first progress also resets the attempt counts)
        entry = encode_tail_entry(size, hot, time.time())
        if entry is None:
            return None
        self._ops = []
        self._inflight = self._pending or _Waiters()
        self._pending = None
        self._inflight_head = self._written_head
        self._inflight_appends = True
        assert self.lease is not None
        tail: tuple[Op, ...] = (*ops[:-1], Append(seq=last_seq, frame=last.frame, entry=entry))
        return Write(lease=self.lease, ops=tail)

    def _fingerprint(self, handle: str) -> str:
        """The handle's fingerprint, computed once per handle (every write until the next handle needs it)."""
        if self._handle_fp[0] != handle:
            self._handle_fp = (handle, fingerprint(handle))
        return self._handle_fp[1]

    def _written(self, write: Write, refused: StoreError | None) -> None:
        if refused is not None and not isinstance(refused, LeaseLost):
            self._not_written(write, refused)  # the store refused this session's write alone
            return
        done, self._inflight = self._inflight, None
        if refused is not None:
            try:
                self._lost(refused)
            finally:
                _settle(done, refused)
            return
        self._config = None
        self._written_head = self._inflight_head
        _settle(done, None)

    def _not_taken(self, exc: Exception) -> None:
        """The write could not be made (the head does not encode): its changes stay, who waits hears why."""
        logger.warning("session %s: the store write could not be made: %r", self.session_id, exc)
        _settle(self._pending, exc)
        self._pending = None

    def _not_written(self, write: Write, exc: BaseException) -> None:
        """The batch failed: keep this write's operations for the next one, and say so to who waits."""
        done, self._inflight = self._inflight, None
        self._ops[:0] = write.ops
        self._written_head = None
        self._head_stale = True
        logger.warning("session %s: the store write failed: %r", self.session_id, exc)
        _settle(done, exc)

    async def flush(self, *, messages_only: bool = False) -> None:
        """Return once every change recorded so far is stored (``messages_only``: every client message
        recorded so far; other changes may still be on their way). ``LeaseLost`` once another worker took
        the session over; the store's own error if the write failed (its changes are kept for the next)."""
        if self.lost is not None:
            raise self.lost
        if messages_only and not (
            any(type(op) is Append for op in self._ops)
            or (self._inflight is not None and self._inflight_appends)
        ):
            return  # no message waits for its write-ahead: what is pending (a head) need not hold the wire
        if self._ops and not self._dirty and self._inflight is None:
            self._mark_dirty()  # a failed write's changes, kept: written now, before this returns
        waited: _Waiters | None
        if self._dirty:
            if self._pending is None:
                self._pending = _Waiters()
            waited = self._pending
        else:
            waited = self._inflight
        if waited is not None:
            await waited.wait()
        if self.lost is not None:
            raise self.lost

    def _lost(self, exc: LeaseLost) -> None:
        if self.lost is not None:
            return
        self.lost = exc
        logger.warning("session %s: %s; it fails here", self.session_id, exc)
        if self._on_lost is not None:
            self._on_lost(f"lease lost: {exc}")

    async def _renew(self) -> None:
        assert self.lease is not None
        while self.lost is None:
            await asyncio.sleep(self.lease_ttl / 3)
            try:
                await self.store.renew(self.lease)
            except LeaseLost as exc:
                self._lost(exc)
                return
            except Exception as exc:  # the store is unreachable: try again; writes will say if it lasts
                logger.warning("session %s: renewing the lease failed: %r", self.session_id, exc)
            self._head_stale = True
            self._mark_dirty()  # what changed without a command (the clock, a turn) is stored too

    async def stop(self) -> None:
        """The session was closed: write what is pending, then forget it in the store (the application got
        every unconfirmed message back) and give the lease up."""
        if self._renewing is not None:
            self._renewing.cancel()
        if self.lost is not None or self.lease is None:
            return
        with contextlib.suppress(Exception):  # a write that failed now changes nothing: it is deleted next
            await self.flush()
        try:
            await self.store.delete(self.session_id)
        except LeaseLost:
            pass
        except Exception as exc:  # never lose close()'s handed-back messages to a store that is down
            logger.warning(
                "session %s: closed, but deleting it from the store failed (%r): drop it by hand "
                "(livestate sessions drop), or a takeover would replay what was handed back",
                self.session_id,
                exc,
            )

    async def release(self) -> None:
        """Give the lease up and stop renewing it, keeping the session stored (a takeover that could not
        start: another attempt can resume it)."""
        if self._renewing is not None:
            self._renewing.cancel()
        if self.lease is not None and self.lost is None:
            with contextlib.suppress(Exception):
                await self.store.release(self.lease)


class _Waiters:
    """Who waits for one write, each with a future of its own: a waiter cancelled leaves the others be."""

    __slots__ = ("futures",)

    def __init__(self) -> None:
        self.futures: list[asyncio.Future[None]] = []

    def wait(self) -> asyncio.Future[None]:
        future = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future


def _settle(waiters: _Waiters | None, exc: BaseException | None) -> None:
    if waiters is None:
        return
    for future in waiters.futures:
        if future.done():  # its waiter was cancelled
            continue
        if exc is None:
            future.set_result(None)
        else:
            future.set_exception(exc)


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
    early: tuple[str, StoredSession] | None = None  # read while the old lease ran out, with its stamp
    while True:
        try:
            lease = await store.acquire(session_id, owner, lease_ttl)
            break
        except SessionLeased as leased:
            left = deadline - loop.time()
            if left <= 0:
                raise
            if early is None:  # load now, off the critical path; kept if nothing is written meanwhile
                early = await _read_early(store, session_id)
            await asyncio.sleep(min(leased.expires_in + 0.002, left, 0.5))
    try:
        if early is not None and await store.stamp(session_id) == early[0]:
            stored: StoredSession | None = early[1]
        else:
            stored = await store.load(session_id)
        if stored is None:
            raise StoreError(f"session {session_id!r} has no snapshot in the store")
    except BaseException:
        await store.release(lease)
        raise
    return StorePersistence(store, session_id, owner=owner, lease_ttl=lease_ttl, lease=lease), stored


async def _read_early(store: SessionStore, session_id: str) -> tuple[str, StoredSession] | None:
    """The session and the stamp it was read under (the stamp first: a write in between makes the stamp
    older than what was read, so it is read again after the lease is taken, never used stale)."""
    try:
        stamp = await store.stamp(session_id)
        stored = await store.load(session_id)
    except StoreError:
        return None  # read again, and reported, once the lease is held
    return None if stamp is None or stored is None else (stamp, stored)


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
        try:
            live = self._make(
                stored.snapshot.config,
                restore=(stored.snapshot, stored.buffer),
                restored_after=max(0.0, time.time() - stored.saved_at),
                store=persistence,
                session_id=session_id,
            )
            await live.start()  # type: ignore[attr-defined]
        except BaseException:  # the session stays stored, for another attempt
            await persistence.release()
            raise
        self._live = live
        return live

    async def __aexit__(self, *_: object) -> None:
        assert self._live is not None
        await self._live.close()


_ = SessionLeased
