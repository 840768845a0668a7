"""The command executor every asyncio transport shares.

It owns a :class:`~livestate.Session`, the :class:`~livestate.ReplayBuffer`, the timers (on the event loop's
monotonic clock) and the queue the application iterates; it carries out every command in order. A transport
subclasses it and supplies four coroutines and a decoder: open a connection and send ``setup``, receive its
frames, send one client message, close; turn a frame into a wire message (``wire.decode`` for raw WebSocket
frames, a conversion for an SDK's objects). The executor is the one path of every frame: it decodes it,
reports a bad one (a ``FrameRejected`` notice), hands a good one to the session and, once the session accepted
it, to the application. Connections are "links", numbered as the session numbers them;
a link's events are reported with its number, so the session ignores a superseded one.

Memory is bounded with backpressure, never with loss: when the application stops iterating, the reader stops
reading the socket once ``max_queued_items`` are waiting; ``send()`` waits while the connection's outgoing
queue holds ``max_outgoing`` messages or the replay buffer is full.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar

import attrs

from livestate import commands as c
from livestate import wire
from livestate.buffer import ReplayBuffer
from livestate.drivers.telemetry import Telemetry, for_session
from livestate.errors import BufferFull, ProtocolError, RecordingError, SessionFailedError, UsageError
from livestate.events import (
    CloseRequested,
    Connect,
    ConnectionClosed,
    ConnectionOpened,
    DiscardRequested,
    Event,
    MessageReceived,
    SendRequested,
    Timer,
    TimerFired,
    TransportFailed,
)
from livestate.machine import LIVE, TERMINAL, SessionState
from livestate.policy import SessionConfig
from livestate.session import Session, SessionSnapshot
from livestate.stats import SessionStats, StatsCollector, reconnect_cause
from livestate.store.base import SessionStore
from livestate.store.persist import StorePersistence

__all__ = ["CommandExecutor", "Item", "Link", "LinkClosed", "Started"]

#: The drivers' logger: one INFO line per lifecycle fact (connected, goAway, closed, backoff, resumed, fresh
#: session, failed), each with ``extra`` fields ``session_id``, ``connection``, ``attempt`` and ``state`` for
#: structured handlers. Never a handle.
logger = logging.getLogger("livestate.driver")

#: What iterating a live session yields: server messages and livestate notices.
Item = wire.ServerMessage | c.Notice
Handed = tuple[tuple[int, wire.ClientMessage], ...]
_END = object()
_HANDING_BACK = (c.MessagesDropped, c.MessagesUnconfirmed, c.SessionFailed)


class LinkClosed(Exception):
    """Raised by a transport when a link ended: the close code (1006 without a close frame) and reason.
    ``fatal`` marks a failure no reconnect can fix (a bad URL, HTTP 401/403/404 at the handshake)."""

    def __init__(self, code: int, reason: str = "", *, fatal: bool = False) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason
        self.fatal = fatal


class Link:
    """One connection of the session, as a transport sees it."""

    __slots__ = ("closing", "conn", "number", "outgoing", "reported", "task")

    def __init__(self, number: int) -> None:
        self.number = number
        #: The transport's connection object, once open.
        self.conn: Any = None
        self.outgoing: asyncio.Queue[wire.ClientMessage] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.closing: asyncio.Task[None] | None = None
        self.reported = False


class _Signal:
    """Wakes every waiter each time it is pulsed (a fresh ``asyncio.Event`` per pulse)."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def pulse(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self) -> None:
        await self._event.wait()


class CommandExecutor(abc.ABC):
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
        self._changed = _Signal()  # the buffer shrank, a link drained, the state changed, an item was taken
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

    # --- the transport's part ---------------------------------------------------------------------

    @abc.abstractmethod
    async def _open(self, link: Link, setup: wire.Setup) -> None:
        """Open a connection, send ``setup``, set ``link.conn``; raise ``LinkClosed`` if it cannot."""

    @abc.abstractmethod
    def _receive(self, link: Link) -> AsyncIterator[Any]:
        """Yield the link's server frames, undecoded (``setupComplete`` first); raise ``LinkClosed`` when it
        ends."""

    @abc.abstractmethod
    def _decode(self, frame: Any) -> wire.ServerMessage:
        """One frame :meth:`_receive` yielded, as a wire message; ``ProtocolError`` naming the field if bad."""

    @abc.abstractmethod
    async def _send(self, link: Link, message: wire.ClientMessage) -> None:
        """Send one client message on the link."""

    @abc.abstractmethod
    async def _close(self, link: Link, code: int, reason: str) -> None:
        """Close the link's connection."""

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
            await self._persistence.start(self)
        if state is SessionState.IDLE:
            self._handle(Connect(at=self.now()))
        else:
            self._execute(self.session.resume(self.now()))

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
            await self._persistence.flush()
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
            while self.session.unconsumed and self.session.state not in TERMINAL:
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
        if item is _END:
            self._ended = True
            raise StopAsyncIteration
        return item  # type: ignore[no-any-return]

    # --- carrying out commands --------------------------------------------------------------------

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

    def _apply(self, event: Event) -> tuple[c.Command, ...]:
        try:
            out = self.session.handle(event)
        except RecordingError as exc:
            logger.warning(
                "the session's recorder failed; carrying on without it: %s",
                exc.__cause__,
                extra=self._extra(),
            )
            self.session.recorder = None
            self._items.put_nowait(c.RecorderFailed(error=repr(exc.__cause__)))
            out = self.session.handle(event)
        if out:
            self._stats.observe(self.session, event, out)
            if self._telemetry is not None:
                self._telemetry.observe(self.session, event, out)
            if logger.isEnabledFor(logging.INFO):
                self._log(event, out)
        return out

    def _extra(self) -> dict[str, Any]:
        session = self.session
        return {
            "session_id": self.session_id,
            "connection": session.connection,
            "attempt": session.outage_attempts,
            "state": session.state.name,
        }

    def _log(self, event: Event, out: tuple[c.Command, ...]) -> None:
        """One INFO line per lifecycle fact in ``out`` (WARNING for what the application must act on)."""
        extra = self._extra()
        for command in out:
            match command:
                case c.StateChanged(old=SessionState.CONNECTING, new=SessionState.SETUP_COMPLETE):
                    logger.info("session %s connected", self.session_id, extra=extra)
                case c.StateChanged(new=SessionState.GOING_AWAY) if isinstance(event, MessageReceived):
                    left = getattr(event.message, "time_left", None)
                    logger.info("goAway: %s left", left.text if left else "no time", extra=extra)
                case c.StateChanged(new=SessionState.RECONNECTING, old=old) if (
                    old is not SessionState.RECONNECTING
                ):
                    cause = reconnect_cause(old, event)
                    reason = (
                        f" {event.reason!r}" if isinstance(event, ConnectionClosed) and event.reason else ""
                    )
                    logger.info("connection lost (%s%s): reconnecting", cause, reason, extra=extra)
                case c.StartTimer(timer=Timer.BACKOFF, deadline=deadline):
                    logger.info(
                        "backing off %.2f s before the next attempt", deadline - event.at, extra=extra
                    )
                case c.Resumed(state_restored=True, replayed=replayed):
                    logger.info("resumed, %d messages replayed", replayed, extra=extra)
                case c.Resumed(replayed=replayed, held=held):
                    logger.info(
                        "fresh session (state not restored): %d replayed, %d held for the re-seed",
                        replayed,
                        held,
                        extra=extra,
                    )
                case (
                    c.MessagesDropped(count=count, reason=reason)
                    | c.MessagesUnconfirmed(count=count, reason=reason)
                ):
                    logger.warning("%d messages handed back: %s", count, reason, extra=extra)
                case c.SessionFailed(reason=reason):
                    logger.warning("session failed: %s", reason, extra=extra)

    def _handle(self, event: Event) -> None:
        self._execute(self._apply(event))

    def _execute(self, out: tuple[c.Command, ...]) -> None:
        ended = changed = False
        released: dict[int, wire.ClientMessage] = {}
        if self._persistence is not None:  # record the batch before carrying it out
            self._persistence.observe(self.session, out)
        for command in out:
            if isinstance(command, _HANDING_BACK) and command.seqs:
                messages = tuple((s, released[s]) for s in command.seqs if s in released)
                command = attrs.evolve(command, messages=messages)
                if self._collecting is not None and not isinstance(command, c.SessionFailed):
                    self._collecting.extend(messages)
            if self._on_command is not None:
                self._on_command(command)
            match command:
                case c.SendMessage(message=message):
                    self._transmit(message)
                case c.BufferMessage() | c.TrimThrough() | c.TrimSeqs():
                    self.buffer.apply(command)
                    changed = True
                case c.ReplayBuffered():
                    for _, message in self.buffer.apply(command):
                        self._transmit(message)
                case c.DropBuffered():
                    released.update(self.buffer.apply(command))
                    changed = True
                case (
                    c.OpenConnection(connection=number, setup=setup)
                    | c.ReconnectWithHandle(connection=number, setup=setup)
                ):
                    self._dial(number, setup)
                case c.CloseConnection(code=code, reason=reason):
                    self._close_link(code, reason)
                case c.StartTimer(timer=timer, deadline=deadline):
                    self._arm(timer, deadline)
                case c.CancelTimer(timer=timer):
                    armed = self._alarms.pop(timer, None)
                    if armed is not None:
                        armed.cancel()
                case c.StateChanged(new=new):
                    self._items.put_nowait(command)
                    changed = True
                    ended = self._on_state(new) or ended
                case c.SessionFailed():
                    self._failure = command
                    self._items.put_nowait(command)
                case _:  # the other notices: for the application
                    self._items.put_nowait(command)
        if ended:  # after the batch, so the notices that explain the end come first
            self._items.put_nowait(_END)
        if changed:
            self._changed.pulse()

    def _on_state(self, state: SessionState) -> bool:
        if state in LIVE:
            self._live.set()
        else:
            self._live.clear()
        if state in TERMINAL:
            for armed in self._alarms.values():
                armed.cancel()
            self._alarms.clear()
            return True
        return False

    def _transmit(self, message: wire.ClientMessage) -> None:
        if self._link is not None:
            self._link.outgoing.put_nowait(message)

    def _arm(self, timer: Timer, deadline: float) -> None:
        old = self._alarms.pop(timer, None)
        if old is not None:
            old.cancel()
        self._alarms[timer] = self._loop.call_at(self._t0 + deadline, self._fire, timer)

    def _fire(self, timer: Timer) -> None:
        self._alarms.pop(timer, None)
        self._handle(TimerFired(at=self.now(), timer=timer))

    def _close_link(self, code: int, reason: str) -> None:
        link = self._link
        if link is None:
            return
        self._link = None
        link.closing = asyncio.ensure_future(self._shut(link, code, reason))

    async def _shut(self, link: Link, code: int, reason: str) -> None:
        if link.conn is not None:
            with contextlib.suppress(Exception):
                await self._close(link, code, reason)
        if link.task is not None and link.task is not asyncio.current_task():
            link.task.cancel()
            with contextlib.suppress(BaseException):
                await link.task

    def _dial(self, number: int, setup: wire.Setup) -> None:
        previous = [old.closing for old in self._links if old.closing is not None and not old.closing.done()]
        link = Link(number)
        self._link = link
        self._links = [*(old for old in self._links if old.task is not None and not old.task.done()), link]
        link.task = asyncio.ensure_future(self._run(link, setup, previous))

    async def _run(self, link: Link, setup: wire.Setup, previous: list[asyncio.Task[None]]) -> None:
        for closing in previous:  # break before make: the service rejects a resume while the old one is open
            with contextlib.suppress(BaseException):
                await closing
        writer: asyncio.Task[None] | None = None
        code, reason = 1006, ""
        try:
            await self._open(link, setup)
            self._handle(ConnectionOpened(at=self.now(), connection=link.number))
            writer = asyncio.ensure_future(self._write(link))
            async for frame in self._receive(link):
                await self._room_to_read()
                try:
                    message = self._decode(frame)
                except ProtocolError as exc:
                    self._reject(link, exc)
                    continue
                self._on_message(link, message)
        except LinkClosed as closed:
            if closed.fatal:
                self._fail(link, closed.reason)
                return
            code, reason = closed.code, closed.reason
        except Exception as exc:  # a transport bug must fail the session loudly, never stall it
            logger.exception("connection %d: the transport failed", link.number)
            self._fail(link, f"the transport failed: {exc!r}")
            return
        finally:
            if writer is not None:
                writer.cancel()
        self._report_closed(link, code, reason)

    async def _room_to_read(self) -> None:
        """Backpressure: while the application has ``max_queued_items`` unread, stop reading the socket
        (unless a sender waits for buffer room, which only reading can free)."""
        while (
            self._items.qsize() >= self.max_queued_items
            and not self._senders_waiting
            and self.session.state not in TERMINAL
        ):
            await self._changed.wait()

    async def _write(self, link: Link) -> None:
        try:
            while True:
                message = await link.outgoing.get()
                if self._persistence is not None:  # write-ahead before the wire
                    await self._persistence.flush()
                await self._send(link, message)
                if link.outgoing.qsize() < self.max_outgoing:
                    self._changed.pulse()
        except LinkClosed:
            return
        except Exception as exc:  # the sender must never die silently: the session fails and says why
            logger.exception("connection %d: sending failed", link.number)
            self._fail(link, f"sending failed: {exc!r}")

    def _fail(self, link: Link, reason: str) -> None:
        if link.reported or self.session.state in TERMINAL:
            return
        link.reported = True
        self._handle(TransportFailed(at=self.now(), reason=reason, connection=link.number))

    def _on_message(self, link: Link, message: wire.ServerMessage) -> None:
        deliver = link is self._link and self.session.state not in TERMINAL
        try:
            out = self._apply(MessageReceived(at=self.now(), message=message, connection=link.number))
        except ProtocolError as exc:  # the session is unchanged; say so and go on
            self._reject(link, exc)
            return
        if deliver:  # only what the session accepted reaches the application
            self._items.put_nowait(message)
        self._execute(out)

    def _reject(self, link: Link, problem: ProtocolError) -> None:
        """The one place a bad or impossible server frame is reported: a warning and a notice."""
        logger.warning("connection %d: rejected a server frame: %s", link.number, problem)
        self._items.put_nowait(c.FrameRejected(error=str(problem)))

    def _report_closed(self, link: Link, code: int, reason: str) -> None:
        if link.reported:
            return
        link.reported = True
        if self.session.state not in TERMINAL:
            self._handle(ConnectionClosed(at=self.now(), code=code, reason=reason, connection=link.number))


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
