"""The command executor every asyncio transport shares.

It owns a :class:`~livestate.Session`, the :class:`~livestate.ReplayBuffer`, the timers (on the event loop's
monotonic clock) and the queue the application iterates; it carries out every command in order. A transport
subclasses it and supplies four coroutines: open a connection and send ``setup``, receive decoded server
messages, send one client message, close. Connections are "links", numbered as the session numbers them;
a link's events are reported with its number, so the session ignores a superseded one.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar

from livestate import commands as c
from livestate import wire
from livestate.buffer import ReplayBuffer
from livestate.errors import UsageError
from livestate.events import (
    CloseRequested,
    Connect,
    ConnectionClosed,
    ConnectionOpened,
    Event,
    MessageReceived,
    SendRequested,
    Timer,
    TimerFired,
)
from livestate.machine import LIVE, TERMINAL, SessionState
from livestate.policy import SessionConfig
from livestate.session import Session, SessionSnapshot

__all__ = ["CommandExecutor", "Item", "Link", "LinkClosed", "Started"]

logger = logging.getLogger(__name__)

#: What iterating a live session yields: server messages and livestate notices.
Item = wire.ServerMessage | c.Notice
_END = object()
_NOTICES = frozenset(
    {c.StateChanged, c.Resumed, c.ToolCallsOrphaned, c.TurnAborted, c.MessagesDropped, c.SessionFailed}
)


class LinkClosed(Exception):
    """Raised by a transport when a link ended: the close code (1006 without a close frame) and reason."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


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


class CommandExecutor(abc.ABC):
    """A session carried out on the running event loop. Subclasses implement the four transport methods.

    ``journal`` records every event; ``on_command`` sees every command as it is carried out; ``restore`` takes
    what ``livestate.journal.load_state`` returned, to carry on a session another process saved
    ``restored_after`` seconds ago."""

    def __init__(
        self,
        config: SessionConfig,
        *,
        journal: Callable[[Event], None] | None = None,
        on_command: Callable[[c.Command], None] | None = None,
        restore: tuple[SessionSnapshot, ReplayBuffer] | None = None,
        restored_after: float = 0.0,
    ) -> None:
        self.config = config
        if restore is None:
            self.session = Session(config, recorder=journal)
            self.buffer = ReplayBuffer()
        else:  # a session saved by another process (journal.save_state), ``restored_after`` seconds ago
            snapshot, self.buffer = restore
            if snapshot.config != config:
                raise UsageError("the snapshot was taken with another SessionConfig")
            self.session = Session.restore(snapshot, recorder=journal, at=0.0, elapsed=restored_after)
        self._on_command = on_command
        self._loop = asyncio.get_running_loop()
        self._t0 = self._loop.time()
        self._items: asyncio.Queue[Any] = asyncio.Queue()
        self._link: Link | None = None
        self._links: list[Link] = []
        self._timers: dict[Timer, asyncio.TimerHandle] = {}
        self._live = asyncio.Event()
        self._ended = False

    # --- the transport's part ---------------------------------------------------------------------

    @abc.abstractmethod
    async def _open(self, link: Link, setup: wire.Setup) -> None:
        """Open a connection, send ``setup``, set ``link.conn``; raise ``LinkClosed`` if it cannot."""

    @abc.abstractmethod
    def _receive(self, link: Link) -> AsyncIterator[wire.ServerMessage]:
        """Yield the link's server messages (``setupComplete`` first); raise ``LinkClosed`` when it ends."""

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

    def now(self) -> float:
        """Seconds since the session started, on the event loop's monotonic clock (the ``at`` of events)."""
        return self._loop.time() - self._t0

    async def start(self) -> None:
        """Open the first connection; for a restored session, re-arm its timers and report the connection
        the old process held as lost, so the session resumes with its handle."""
        state = self.session.state
        if state is SessionState.IDLE:
            self._handle(Connect(at=self.now()))
            return
        if state in TERMINAL:
            raise UsageError(f"cannot start a session that is {state.name}")
        for timer, deadline in self.session.timers.items():
            self._arm(timer, deadline)
        if state in LIVE or self.session.attempt_open:
            lost = ConnectionClosed(
                at=self.now(),
                code=1006,
                reason="the process that held it ended",
                connection=self.session.connection,
            )
            self._handle(lost)

    async def send(self, message: wire.ClientMessage) -> None:
        """Deliver ``message``: sent now when live, buffered and replayed after a reconnect otherwise.

        Raises ``UsageError`` only when the session is closed or failed."""
        self._handle(SendRequested(at=self.now(), message=message))
        await asyncio.sleep(0)

    async def wait_live(self, timeout: float | None = None) -> None:
        """Wait until a connection is live (``setupComplete`` received)."""
        await asyncio.wait_for(self._live.wait(), timeout)

    async def close(self) -> None:
        """Close the session: the connection is closed, unconfirmed messages are reported, tasks end."""
        if self.session.state not in TERMINAL:
            self._handle(CloseRequested(at=self.now()))
        tasks = [t for link in self._links for t in (link.task, link.closing) if t is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        for task in tasks:
            task.cancel()

    def __aiter__(self) -> AsyncIterator[Item]:
        return self

    async def __anext__(self) -> Item:
        if self._ended and self._items.empty():
            raise StopAsyncIteration
        item = await self._items.get()
        if item is _END:
            self._ended = True
            raise StopAsyncIteration
        return item  # type: ignore[no-any-return]

    # --- carrying out commands --------------------------------------------------------------------

    def _handle(self, event: Event) -> None:
        self._execute(self.session.handle(event))

    def _execute(self, out: tuple[c.Command, ...]) -> None:
        ended = False
        for command in out:
            if self._on_command is not None:
                self._on_command(command)
            for _, message in self.buffer.apply(command):
                self._transmit(message)
            kind = type(command)
            if kind is c.SendMessage:
                self._transmit(command.message)  # type: ignore[union-attr]
            elif kind is c.OpenConnection or kind is c.ReconnectWithHandle:
                self._dial(command.connection, command.setup)  # type: ignore[union-attr]
            elif kind is c.CloseConnection:
                self._close_link(command.code, command.reason)  # type: ignore[union-attr]
            elif kind is c.StartTimer:
                self._arm(command.timer, command.deadline)  # type: ignore[union-attr]
            elif kind is c.CancelTimer:
                handle = self._timers.pop(command.timer, None)  # type: ignore[union-attr]
                if handle is not None:
                    handle.cancel()
            elif kind in _NOTICES:
                self._items.put_nowait(command)
                if kind is c.StateChanged:
                    ended = self._on_state(command.new) or ended  # type: ignore[union-attr]
        if ended:  # after the batch, so the notices that explain the end come first
            self._items.put_nowait(_END)

    def _on_state(self, state: SessionState) -> bool:
        if state in LIVE:
            self._live.set()
        else:
            self._live.clear()
        if state in TERMINAL:
            for handle in self._timers.values():
                handle.cancel()
            self._timers.clear()
            return True
        return False

    def _transmit(self, message: wire.ClientMessage) -> None:
        if self._link is not None:
            self._link.outgoing.put_nowait(message)

    def _arm(self, timer: Timer, deadline: float) -> None:
        old = self._timers.pop(timer, None)
        if old is not None:
            old.cancel()
        self._timers[timer] = self._loop.call_at(self._t0 + deadline, self._fire, timer)

    def _fire(self, timer: Timer) -> None:
        self._timers.pop(timer, None)
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
            async for message in self._receive(link):
                self._on_message(link, message)
        except LinkClosed as closed:
            code, reason = closed.code, closed.reason
        finally:
            if writer is not None:
                writer.cancel()
        self._report_closed(link, code, reason)

    async def _write(self, link: Link) -> None:
        with contextlib.suppress(LinkClosed):
            while True:
                await self._send(link, await link.outgoing.get())

    def _on_message(self, link: Link, message: wire.ServerMessage) -> None:
        if link is self._link and self.session.state not in TERMINAL:
            self._items.put_nowait(message)
        try:
            self._handle(MessageReceived(at=self.now(), message=message, connection=link.number))
        except Exception as exc:  # a ProtocolError: the session is unchanged; say so and go on
            logger.warning("connection %d: %s", link.number, exc)
            self._items.put_nowait(c.MessagesDropped(count=1, reason=f"rejected server message: {exc}"))

    def _bad_frame(self, link: Link, problem: str) -> None:
        """A transport calls this for a frame it could not decode."""
        logger.warning("connection %d: dropped a bad server frame: %s", link.number, problem)
        self._items.put_nowait(c.MessagesDropped(count=1, reason=f"bad server frame: {problem}"))

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
