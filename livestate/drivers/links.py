"""Connections ("links") as the executor runs them: what a transport supplies, and each link's life.

A transport implements four coroutines and a decoder (:class:`Connections`): open a connection and send
``setup``, receive its frames, send one client message, close; turn a frame into a wire message. The rest of a
link's life is here, the same for every transport: break before make, the one reading loop that decodes each
frame and reports a bad one in one place, the writer (write-ahead to a store first), backpressure on reading,
and reporting the link's end to the session exactly once, with the link's number.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from livestate import commands as c
from livestate import wire
from livestate.errors import ProtocolError
from livestate.events import ConnectionClosed, ConnectionOpened, Event, MessageReceived, TransportFailed
from livestate.machine import TERMINAL
from livestate.session import Session
from livestate.store.base import LeaseLost
from livestate.store.persist import StorePersistence

__all__ = ["Connections", "Link", "LinkClosed", "Signal"]

logger = logging.getLogger("livestate.driver")


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


class Signal:
    """Wakes every waiter each time it is pulsed (a fresh ``asyncio.Event`` per pulse)."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def pulse(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self) -> None:
        await self._event.wait()


class Connections(abc.ABC):
    """The links of one session: the transport's part (abstract) and the life every link shares."""

    # Set up by the executor (declared here for the type checker).
    session: Session
    max_queued_items: int
    max_outgoing: int
    _link: Link | None
    _links: list[Link]
    _items: asyncio.Queue[Any]
    _changed: Signal
    _senders_waiting: int
    _persistence: StorePersistence | None

    @abc.abstractmethod
    def now(self) -> float:
        """Seconds since the session started (the ``at`` of events)."""

    @abc.abstractmethod
    def _apply(self, event: Event) -> tuple[c.Command, ...]:
        """Hand ``event`` to the session; return its commands."""

    @abc.abstractmethod
    def _execute(self, out: tuple[c.Command, ...]) -> None:
        """Carry out ``out``, in order."""

    def _handle(self, event: Event) -> None:
        self._execute(self._apply(event))

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

    # --- a link's life ----------------------------------------------------------------------------

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
                    try:
                        await self._persistence.flush(messages_only=True)
                    except LeaseLost:
                        return  # the session failed (another worker carries it): nothing more goes out
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
