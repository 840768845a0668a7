"""The command executor every asyncio transport shares.

It owns a :class:`~livestate.Session`, the :class:`~livestate.ReplayBuffer`, the timers (on the event loop's
monotonic clock) and the queue the application iterates; it carries out every command in order. A transport
subclasses it and supplies four coroutines and a decoder: open a connection and send ``setup``, receive its
frames, send one client message, close; turn a frame into a wire message (``wire.decode`` for raw WebSocket
frames, a conversion for an SDK's objects). The executor is the one path of every frame: it decodes it,
reports a bad one (a ``FrameRejected`` notice), hands a good one to the session and, once the session accepted
it, to the application. Connections are "links", numbered as the session numbers them;
a link's events are reported with its number, so the session ignores a superseded one.

Three rooms: a link's life and the transport's part (:mod:`livestate.drivers.links`), carrying out
commands (:mod:`livestate.drivers.carrier`), and here the application's side (start, send, wait, drain,
close, iterate).

Memory is bounded with backpressure, never with loss: when the application stops iterating, the reader stops
reading the socket once ``max_queued_items`` are waiting; ``send()`` waits while the connection's outgoing
queue holds ``max_outgoing`` messages or the replay buffer is full.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar

from livestate import commands as c
from livestate import wire
from livestate.buffer import ReplayBuffer
from livestate.drivers.carrier import END, Carrier
from livestate.drivers.links import Link, LinkClosed, Signal
from livestate.drivers.telemetry import Telemetry, for_session
from livestate.errors import BufferFull, SessionFailedError, UsageError
from livestate.events import (
    CloseRequested,
    Connect,
    DiscardRequested,
    Event,
    SendRequested,
    Timer,
    TransportFailed,
)
from livestate.machine import TERMINAL, SessionState
from livestate.policy import SessionConfig
from livestate.session import Session, SessionSnapshot, restore_loss
from livestate.stats import SessionStats, StatsCollector
from livestate.store.base import LeaseLost, SessionStore
from livestate.store.persist import StorePersistence

__all__ = ["CommandExecutor", "Item", "Link", "LinkClosed", "Started"]

#: What iterating a live session yields: server messages and livestate notices.
Item = wire.ServerMessage | c.Notice
Handed = tuple[tuple[int, wire.ClientMessage], ...]


class CommandExecutor(Carrier):
    """A session carried out on the running event loop. Subclasses implement the four transport methods.

    ``journal`` records every event (if it fails, the driver detaches it, logs a warning and yields a
    ``RecorderFailed`` notice; the session carries on); ``on_command`` sees every command as it is carried
    out; ``restore`` takes what ``livestate.snapshots.load_state`` returned, to carry on a session another
    process saved ``restored_after`` seconds ago. ``max_queued_items`` bounds what waits for the application's
    iteration (the socket is not read meanwhile); ``max_outgoing`` bounds what waits for the socket (``send()``
    waits meanwhile). ``session_id`` names the session in log records and spans; ``telemetry`` picks
    OpenTelemetry providers (``livestate.drivers.telemetry``; the global ones by default)."""

    def __init__(
        self,
        config: SessionConfig,
        *,
        journal: Callable[[Event], None] | None = None,
        on_command: Callable[[c.Command], None] | None = None,
        restore: tuple[SessionSnapshot, ReplayBuffer] | None = None,
        restored_after: float = 0.0,
        max_queued_items: int = 1024,
        max_outgoing: int = 256,
        session_id: str | None = None,
        telemetry: Telemetry | None = None,
        store: SessionStore | StorePersistence | None = None,
    ) -> None:
        if max_queued_items < 1 or max_outgoing < 1:
            raise UsageError("max_queued_items and max_outgoing must be at least 1")
        self.config = config
        if restore is None:
            self.session = Session(config, recorder=journal)
            self.buffer = ReplayBuffer()
        else:  # a session saved by another process (snapshots.save_state), ``restored_after`` seconds ago
            snapshot, self.buffer = restore
            if snapshot.config != config:
                raise UsageError("the snapshot was taken with another SessionConfig")
            self.session = Session.restore(snapshot, recorder=journal, at=0.0, elapsed=restored_after)
        self._on_command = on_command
        #: Names this session in log records (``extra["session_id"]``); a random one unless given.
        self.session_id = session_id or uuid.uuid4().hex[:12]
        self._stats = StatsCollector()
        self._telemetry = for_session(telemetry, self.session_id, self.session)
        self.max_queued_items = max_queued_items
        self.max_outgoing = max_outgoing
        self._loop = asyncio.get_running_loop()
        self._t0 = self._loop.time()
        self._items: asyncio.Queue[Any] = asyncio.Queue()
        self._link: Link | None = None
        self._links: list[Link] = []
        self._alarms: dict[Timer, asyncio.TimerHandle] = {}  # the loop's callbacks for the session's timers
        self._live = asyncio.Event()
        self._changed = Signal()  # the buffer shrank, a link drained, the state changed, an item was taken
        self._ended = False
        self._started = False
        self._closed = False
        self._iterating = False
        self._senders_waiting = 0
        self._failure: c.SessionFailed | None = None
        self._collecting: list[tuple[int, wire.ClientMessage]] | None = None
        # write-ahead to a SessionStore; ``store`` also takes a StorePersistence
        self._persistence = (
            store
            if store is None or isinstance(store, StorePersistence)
            else StorePersistence(store, self.session_id)
        )

    # --- public API -------------------------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        """The session's state."""
        return self.session.state

    @property
    def stats(self) -> SessionStats:
        """The session's figures now: reconnects by cause, gaps, messages sent / confirmed / replayed /
        unconfirmed / handed back, duplicates risked, attempts left, state and since when (cheap)."""
        return self._stats.snapshot(self.session)

    @property
    def queued_items(self) -> int:
        """Items waiting for the application's iteration (at most about ``max_queued_items``: the socket is
        not read beyond that, apart from notices and while a sender waits for buffer room)."""
        return self._items.qsize()

    def now(self) -> float:
        """Seconds since the session started, on the event loop's monotonic clock (the ``at`` of events)."""
        return self._loop.time() - self._t0

    async def start(self) -> None:
        """Open the first connection; for a restored session, re-arm its timers and report the connection
        the old process held as lost, so the session resumes with its handle. ``UsageError`` if called twice."""
        if self._started:
            raise UsageError("start() was already called on this session")
        state = self.session.state
        if state in TERMINAL:
            raise UsageError(f"cannot start a session that is {state.name}")
        self._started = True
        if self._persistence is not None:  # lease, first snapshot
            await self._persistence.start(self, self._store_lost)
        if state is SessionState.IDLE:
            self._handle(Connect(at=self.now()))
        else:
            now = self.now()
            lost = restore_loss(self.session, now)
            out = self.session.resume(now)
            if self._persistence is not None:
                self._persistence.observe(self.session, out)
            if lost is not None:  # counted and reported like any other lost connection
                self._account(lost, out)
            self._execute(out)

    async def send(self, message: wire.ClientMessage) -> None:
        """Deliver ``message``: sent now when live, buffered and replayed after a reconnect otherwise.

        Never fails for a transient outage. Waits (backpressure) while the connection cannot keep up or the
        replay buffer is full. Raises ``UsageError`` at once for a message that cannot be encoded or a session
        that is closed, and ``SessionFailedError`` once it failed."""
        self._check_usable("send()")
        if not isinstance(message, (wire.ClientContent, wire.RealtimeInput, wire.ToolResponse)):
            raise UsageError(f"send() takes a client message, got {message!r}")
        while True:
            link = self._link
            if link is not None and link.outgoing.qsize() >= self.max_outgoing:
                await self._changed.wait()
                continue
            try:
                self._handle(SendRequested(at=self.now(), message=message))
            except BufferFull:
                await self._wait_for_room()
                self._check_usable("send()")
                continue
            except UsageError:
                self._check_usable("send()")
                raise
            break
        if self._persistence is not None:  # send() returns once the message is stored
            try:
                await self._persistence.flush()
            except Exception as exc:
                # The message was accepted but cannot be stored: the session fails (the writer does the same),
                # handing it back with the rest, rather than go on without its write-ahead.
                if not isinstance(exc, LeaseLost):
                    self._store_lost(f"the store failed: {exc!r}")
                self._check_usable("send()")  # SessionFailedError, the messages handed back
                raise
        await asyncio.sleep(0)

    async def wait_live(self, timeout: float | None = None) -> None:
        """Wait until a connection is live (``setupComplete`` received).

        Raises ``SessionFailedError`` (with the reason and the handed-back messages) as soon as the session is
        FAILED, ``UsageError`` once it is closed, and ``TimeoutError`` saying the state after ``timeout``."""
        self._check_usable("wait_live()")

        async def live_or_over() -> None:
            while not self._live.is_set() and self.session.state not in TERMINAL:
                await self._changed.wait()

        try:
            await asyncio.wait_for(live_or_over(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(
                f"the session is not live after {timeout} s: it is {self.session.state.name} "
                f"(connection {self.session.connection}, {self.session.outage_attempts} attempts in this outage)"
            ) from None
        self._check_usable("wait_live()")

    async def drain(self, timeout: float | None = None) -> Handed:
        """Wait until the server confirmed every message sent so far (by index, or by a handle in handle-only
        mode), for at most ``timeout`` seconds. Returns what is still unconfirmed, as ``(seq, message)``
        pairs (empty when everything is confirmed)."""
        self._check_usable("drain()")

        async def confirmed() -> None:
            while self.session.unconfirmed_count and self.session.state not in TERMINAL:
                await self._changed.wait()

        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(confirmed(), timeout)
        held = dict(self.buffer.items())
        return tuple((seq, held[seq]) for seq in self.session.unconfirmed_seqs if seq in held)

    def discard_held(self) -> Handed:
        """Give up the input a fresh session holds for the application's re-seed (``Resumed.held``): it is
        handed back here (and in a ``MessagesDropped`` notice) instead of being replayed."""
        self._check_usable("discard_held()")
        collected: list[tuple[int, wire.ClientMessage]] = []
        self._collecting = collected
        try:
            self._handle(DiscardRequested(at=self.now()))
        finally:
            self._collecting = None
        return tuple(collected)

    async def close(self) -> Handed:
        """Close the session: the connection is closed and tasks end. Returns every client message that was
        never confirmed, as ``(seq, message)`` pairs (also handed back in ``MessagesDropped`` /
        ``MessagesUnconfirmed`` notices). Closing again returns nothing more."""
        self._closed = True
        collected: list[tuple[int, wire.ClientMessage]] = []
        if self.session.state not in TERMINAL:
            self._collecting = collected
            try:
                self._handle(CloseRequested(at=self.now()))
            finally:
                self._collecting = None
        tasks = [t for link in self._links for t in (link.task, link.closing) if t is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        for task in tasks:
            task.cancel()
        self._changed.pulse()
        if self._persistence is not None:  # the session ended: forget it there
            await self._persistence.stop()
        return tuple(collected)

    def __aiter__(self) -> AsyncIterator[Item]:
        return self

    async def __anext__(self) -> Item:
        if self._ended and self._items.empty():
            raise StopAsyncIteration
        if self._iterating:
            raise UsageError("another task is already iterating this session: iterate it from one task")
        self._iterating = True
        try:
            item = await self._items.get()
        finally:
            self._iterating = False
        if self._items.qsize() < self.max_queued_items:
            self._changed.pulse()
        if item is END:
            self._ended = True
            raise StopAsyncIteration
        return item  # type: ignore[no-any-return]

    def _store_lost(self, reason: str) -> None:
        """The store refused this worker's lease token (another worker carries the session now), or failed:
        the session fails here, every unconfirmed message handed back (a new owner replays its stored copy)."""
        if self.session.state is not SessionState.IDLE and self.session.state not in TERMINAL:
            self._handle(TransportFailed(at=self.now(), reason=reason))

    def _check_usable(self, what: str) -> None:
        if self._failure is not None:
            raise SessionFailedError(self._failure.reason, self._failure.messages)
        if self._closed or self.session.state is SessionState.CLOSED:
            raise UsageError(f"{what} on a closed session")

    async def _wait_for_room(self) -> None:
        """A sender waits for the replay buffer to shrink, which only reading the server's confirmations can
        do: while it waits, the reader does not pause for the application."""
        self._senders_waiting += 1
        self._changed.pulse()  # a reader paused on a full item queue must not wait for this sender
        try:
            await self._changed.wait()
        finally:
            self._senders_waiting -= 1


E = TypeVar("E", bound=CommandExecutor)


class Started(Generic[E]):
    """``async with``: start a transport's session on entry, close it on exit (what ``connect()`` returns)."""

    def __init__(self, make: Callable[[], E]) -> None:
        self._make = make
        self._live: E | None = None

    async def __aenter__(self) -> E:
        self._live = self._make()
        await self._live.start()
        return self._live

    async def __aexit__(self, *_: object) -> None:
        assert self._live is not None
        await self._live.close()
