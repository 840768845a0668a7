"""The asyncio WebSocket transport: a Session, a ReplayBuffer, timers on the event loop, real sockets.

``async with connect(url, config, headers=...) as live:`` opens the session. ``await live.send(message)``
never raises for a transient outage (the session buffers and replays); ``async for item in live`` yields
decoded server messages and livestate notices (``livestate.commands.Notice``) until the session is closed or
failed; ``live.state``; ``await live.close()``. The driver carries out every command: it dials and closes
connections (the old one first), sends ``setup``, keeps payloads in a ``ReplayBuffer``, replays, runs the
timers on the loop's monotonic clock and reports every close with its real code (1006 when no close frame
came).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from livestate import commands as c
from livestate import wire
from livestate.buffer import ReplayBuffer
from livestate.errors import ProtocolError
from livestate.events import (
    CloseRequested,
    Connect,
    ConnectionOpened,
    Event,
    MessageReceived,
    SendRequested,
    Timer,
    TimerFired,
)
from livestate.events import (
    ConnectionClosed as ConnectionClosedEvent,
)
from livestate.machine import LIVE, TERMINAL, SessionState
from livestate.policy import SessionConfig
from livestate.session import Session

__all__ = ["GEMINI_API_URL", "LiveSession", "connect", "vertex_url"]

logger = logging.getLogger(__name__)

#: The Gemini Developer API endpoint (authenticate with the ``x-goog-api-key`` header).
GEMINI_API_URL = "wss://generativelanguage.googleapis.com/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"


def vertex_url(location: str) -> str:
    """The Vertex AI endpoint for ``location`` (authenticate with ``Authorization: Bearer <token>``)."""
    return f"wss://{location}-aiplatform.googleapis.com/ws/google.cloud.aiplatform.v1.LlmBidiService/BidiGenerateContent"


Item = wire.ServerMessage | c.Notice
_END = object()


class _Link:
    """One WebSocket connection of the session."""

    __slots__ = ("closing", "number", "outgoing", "reported", "task", "ws")

    def __init__(self, number: int) -> None:
        self.number = number
        self.ws: ClientConnection | None = None
        self.outgoing: asyncio.Queue[str] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.closing: asyncio.Task[None] | None = None
        self.reported = False


class LiveSession:
    """A Live API session kept alive over WebSockets. Create it with :func:`connect`.

    ``journal`` records every event (a ``livestate.journal.Journal``); ``on_command`` sees every command as
    it is carried out (for tracing); the ping settings tune websockets' keepalive; other keyword arguments go
    to ``websockets.connect``."""

    def __init__(
        self,
        url: str,
        config: SessionConfig,
        *,
        headers: Mapping[str, str] | None = None,
        journal: Callable[[Event], None] | None = None,
        on_command: Callable[[c.Command], None] | None = None,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 60.0,
        open_timeout: float = 10.0,
        **ws_options: Any,
    ) -> None:
        self.url = url
        self.config = config
        self.session = Session(config, recorder=journal)
        self.buffer = ReplayBuffer()
        self._on_command = on_command
        self._headers = dict(headers or {})
        # The service's pongs have been measured at 8-30 s: a 20 s ping timeout kills healthy connections.
        self._ws_options = {
            "ping_interval": ping_interval,
            "ping_timeout": ping_timeout,
            "open_timeout": open_timeout,
            "max_size": None,
            **ws_options,
        }
        self._loop = asyncio.get_running_loop()
        self._t0 = self._loop.time()
        self._items: asyncio.Queue[Any] = asyncio.Queue()
        self._link: _Link | None = None
        self._links: list[_Link] = []
        self._timers: dict[Timer, asyncio.TimerHandle] = {}
        self._live = asyncio.Event()
        self._ended = False

    # --- public API -------------------------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        """The session's state."""
        return self.session.state

    def now(self) -> float:
        """Seconds since the session started, on the event loop's monotonic clock (the ``at`` of events)."""
        return self._loop.time() - self._t0

    async def start(self) -> None:
        """Open the first connection (``connect()`` calls this)."""
        self._handle(Connect(at=self.now()))

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
        await self._settle()

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
        link = self._link
        if link is not None:
            link.outgoing.put_nowait(wire.encode(message))

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

    async def _shut(self, link: _Link, code: int, reason: str) -> None:
        if link.ws is not None:
            with contextlib.suppress(Exception):
                await link.ws.close(code, reason)
        if link.task is not None and link.task is not asyncio.current_task():
            link.task.cancel()
            with contextlib.suppress(BaseException):
                await link.task

    def _dial(self, number: int, setup: wire.Setup) -> None:
        previous = [
            link.closing for link in self._links if link.closing is not None and not link.closing.done()
        ]
        link = _Link(number)
        self._link = link
        self._links = [*(old for old in self._links if old.task is not None and not old.task.done()), link]
        link.task = asyncio.ensure_future(self._run(link, setup, previous))

    async def _run(self, link: _Link, setup: wire.Setup, previous: list[asyncio.Task[None]]) -> None:
        for closing in previous:  # break before make: the service rejects a resume while the old one is open
            with contextlib.suppress(BaseException):
                await closing
        code, reason = 1006, ""
        writer: asyncio.Task[None] | None = None
        try:
            ws = await websockets.connect(self.url, additional_headers=self._headers, **self._ws_options)
        except (OSError, InvalidHandshake, InvalidURI, asyncio.TimeoutError) as exc:
            self._report_closed(link, 1006, f"could not connect: {exc}")
            return
        link.ws = ws
        try:
            await ws.send(wire.encode(setup))
            self._handle(ConnectionOpened(at=self.now(), connection=link.number))
            writer = asyncio.ensure_future(self._write(link, ws))
            async for raw in ws:
                self._on_frame(link, raw)
            code, reason = _close_of(ws)
        except ConnectionClosed as exc:
            code, reason = (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd is not None else (1006, "")
        finally:
            if writer is not None:
                writer.cancel()
        self._report_closed(link, code, reason)

    async def _write(self, link: _Link, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await ws.send(await link.outgoing.get())

    def _on_frame(self, link: _Link, raw: str | bytes) -> None:
        at = self.now()
        try:
            message = wire.decode(raw, max_size=self.config.max_frame_bytes)
            current = link is self._link
            if current and self.session.state not in TERMINAL:
                self._items.put_nowait(message)
            self._handle(MessageReceived(at=at, message=message, connection=link.number))
        except ProtocolError as exc:
            logger.warning("connection %d: dropped a bad server frame: %s", link.number, exc)
            self._items.put_nowait(c.MessagesDropped(count=1, reason=f"bad server frame: {exc}"))

    def _report_closed(self, link: _Link, code: int, reason: str) -> None:
        if link.reported:
            return
        link.reported = True
        if self.session.state not in TERMINAL:
            self._handle(
                ConnectionClosedEvent(at=self.now(), code=code, reason=reason, connection=link.number)
            )

    async def _settle(self) -> None:
        tasks = [t for link in self._links for t in (link.task, link.closing) if t is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        for task in tasks:
            task.cancel()


def _close_of(ws: ClientConnection) -> tuple[int, str]:
    code = ws.close_code
    return (1006, "") if code is None else (code, ws.close_reason or "")


_NOTICES = frozenset(
    {c.StateChanged, c.Resumed, c.ToolCallsOrphaned, c.TurnAborted, c.MessagesDropped, c.SessionFailed}
)


class connect:
    """``async with connect(url, config, headers=...) as live:`` — a :class:`LiveSession`, started."""

    def __init__(self, url: str, config: SessionConfig, **options: Any) -> None:
        self._args = (url, config)
        self._options = options
        self._live: LiveSession | None = None

    async def __aenter__(self) -> LiveSession:
        self._live = LiveSession(*self._args, **self._options)
        await self._live.start()
        return self._live

    async def __aexit__(self, *_: object) -> None:
        assert self._live is not None
        await self._live.close()
