"""The asyncio WebSocket transport: livestate's command executor over real sockets (``websockets``).

``async with connect(url, config, headers=...) as live:`` opens the session. ``await live.send(message)``
never raises for a transient outage (the session buffers and replays); ``async for item in live`` yields
decoded server messages and livestate notices (``livestate.commands.Notice``) until the session is closed or
failed; ``live.state``; ``await live.close()``. Every command is carried out: connections are dialled and
closed (the old one first), ``setup`` is sent, payloads are kept in a ``ReplayBuffer`` and replayed, timers run
on the loop's monotonic clock, and every close is reported with its real code (1006 when no close frame came).
Text and binary frames are accepted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from livestate import commands as c
from livestate import wire
from livestate.buffer import ReplayBuffer
from livestate.drivers.executor import CommandExecutor, Item, Link, LinkClosed, Started
from livestate.drivers.redact import redact, redacting_logger
from livestate.drivers.telemetry import Telemetry
from livestate.events import Event
from livestate.policy import SessionConfig
from livestate.session import SessionSnapshot
from livestate.store import SessionStore, StorePersistence, resuming

__all__ = [
    "GEMINI_API_URL",
    "PERMANENT_HTTP_STATUSES",
    "Item",
    "LiveSession",
    "connect",
    "handshake_failure",
    "link_closed",
    "resume",
    "vertex_url",
]

#: HTTP answers to the WebSocket handshake that no retry can fix (bad credentials, no permission, wrong
#: endpoint): the session fails at once with the status and the server's words. Others (429, 5xx) are retried.
PERMANENT_HTTP_STATUSES = frozenset({400, 401, 403, 404})

#: The Gemini Developer API endpoint (authenticate with the ``x-goog-api-key`` header).
GEMINI_API_URL = "wss://generativelanguage.googleapis.com/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"


def vertex_url(location: str) -> str:
    """The Vertex AI endpoint for ``location`` (authenticate with ``Authorization: Bearer <token>``)."""
    return f"wss://{location}-aiplatform.googleapis.com/ws/google.cloud.aiplatform.v1.LlmBidiService/BidiGenerateContent"


class LiveSession(CommandExecutor):
    """A Live API session kept alive over WebSockets. Create it with :func:`connect`.

    ``journal`` records every event (a ``livestate.journal.Journal``); ``on_command`` sees every command as
    it is carried out (for tracing); the ping settings tune websockets' keepalive; other keyword arguments go
    to ``websockets.connect``.

    ``max_size`` (websockets' limit on an incoming message, checked from the frame header before the payload
    is read) defaults to ``config.max_frame_bytes``: a bigger frame closes the connection with 1009, which
    the session retries (resuming); ``max_size=None`` lifts it. websockets logs through ``logger``'s child
    ``<logger>.livestate`` (``logger`` defaults to ``websockets.client``), which masks keys, tokens and
    resumption handles (``livestate.drivers.redact``)."""

    def __init__(
        self,
        url: str,
        config: SessionConfig,
        *,
        headers: Mapping[str, str] | None = None,
        journal: Callable[[Event], None] | None = None,
        on_command: Callable[[c.Command], None] | None = None,
        restore: tuple[SessionSnapshot, ReplayBuffer] | None = None,
        restored_after: float = 0.0,
        max_queued_items: int = 1024,
        max_outgoing: int = 256,
        session_id: str | None = None,
        telemetry: Telemetry | None = None,
        store: SessionStore | StorePersistence | None = None,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 60.0,
        open_timeout: float = 10.0,
        close_timeout: float = 2.0,
        logger: logging.Logger | None = None,
        **ws_options: Any,
    ) -> None:
        super().__init__(
            config,
            journal=journal,
            on_command=on_command,
            restore=restore,
            restored_after=restored_after,
            max_queued_items=max_queued_items,
            max_outgoing=max_outgoing,
            session_id=session_id,
            telemetry=telemetry,
            store=store,
        )
        self.url = url
        self._headers = dict(headers or {})
        # The service's pongs have been measured at 8-30 s: a 20 s ping timeout kills healthy connections.
        self._ws_options = {
            "ping_interval": ping_interval,
            "ping_timeout": ping_timeout,
            "open_timeout": open_timeout,
            # Break before make waits for the old connection's close: do not let a silent peer hold it 10 s.
            "close_timeout": close_timeout,
            "max_size": config.max_frame_bytes,
            "create_connection": BoundedCloseConnection,
            **ws_options,
            "logger": redacting_logger(logger or logging.getLogger("websockets.client")),
        }

    async def _open(self, link: Link, setup: wire.Setup) -> None:
        try:
            ws = await websockets.connect(self.url, additional_headers=self._headers, **self._ws_options)
        except (OSError, InvalidHandshake, InvalidURI, asyncio.TimeoutError) as exc:
            raise handshake_failure(exc) from None
        link.conn = ws
        try:
            await ws.send(wire.encode(setup))
        except ConnectionClosed as exc:
            raise link_closed(exc) from None

    async def _receive(self, link: Link) -> AsyncIterator[str | bytes]:
        ws: ClientConnection = link.conn
        try:
            async for raw in ws:
                yield raw
        except ConnectionClosed as exc:
            raise link_closed(exc) from None
        code = ws.close_code
        raise LinkClosed(1006, "") if code is None else LinkClosed(code, ws.close_reason or "")

    def _decode(self, frame: str | bytes) -> wire.ServerMessage:
        return wire.decode(frame, max_size=self.config.max_frame_bytes)

    async def _send(self, link: Link, message: wire.ClientMessage) -> None:
        try:
            await link.conn.send(wire.encode(message))
        except ConnectionClosed as exc:
            raise link_closed(exc) from None

    async def _close(self, link: Link, code: int, reason: str) -> None:
        await link.conn.close(code, reason)


class BoundedCloseConnection(ClientConnection):
    """A client connection that waits at most ``close_timeout`` for the server to end TCP after its close
    frame. websockets sets that deadline when the frame arrives but enforces it only for a task that sends;
    a reader alone waits until the keepalive fails (``ping_interval`` + ``ping_timeout``: 80 s with this
    driver's defaults) before the session learns the connection ended and reconnects."""

    _close_alarm: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.close_deadline is not None and self._close_alarm is None:
            self._close_alarm = self.loop.call_at(self.close_deadline, self._end_tcp)

    def _end_tcp(self) -> None:
        if not self.connection_lost_waiter.done():
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._close_alarm is not None:
            self._close_alarm.cancel()
        super().connection_lost(exc)


def handshake_failure(exc: BaseException) -> LinkClosed:
    """What a failed WebSocket handshake means for the session: permanent (a bad URL, an HTTP status in
    :data:`PERMANENT_HTTP_STATUSES`, with the server's words) or a transient 1006 to retry. Secrets in the
    URL or the answer are masked."""
    if isinstance(exc, InvalidURI):  # no retry can fix the address
        return LinkClosed(1006, redact(f"bad URL: {exc}"), fatal=True)
    if isinstance(exc, InvalidStatus):
        response = exc.response
        body = response.body.decode("utf-8", "replace").strip()[:500] if response.body else ""
        reason = f"HTTP {response.status_code} {response.reason_phrase} at the handshake"
        return LinkClosed(
            1006,
            redact(reason + (f": {body}" if body else "")),
            fatal=response.status_code in PERMANENT_HTTP_STATUSES,
        )
    return LinkClosed(1006, redact(f"could not connect: {exc}"))


def link_closed(exc: ConnectionClosed) -> LinkClosed:
    """The close a websockets ``ConnectionClosed`` reports: the peer's code and reason, 1006 when no close
    frame came, 1009 with the limit when we refused a frame over ``max_size``. (Both drivers use it.)"""
    # We refused a frame over max_size (websockets sent 1009 and ignores the rest, the peer's close included).
    if exc.rcvd is None and exc.sent is not None and exc.sent.code == 1009:
        return LinkClosed(1009, f"frame over max_frame_bytes: {exc.sent.reason}")
    if exc.rcvd is None:
        return LinkClosed(1006, "")
    return LinkClosed(exc.rcvd.code, exc.rcvd.reason)


def connect(url: str, config: SessionConfig, **options: Any) -> Started[LiveSession]:
    """``async with connect(url, config, headers=...) as live:`` — a :class:`LiveSession`, started, and
    closed on exit. ``options`` are :class:`LiveSession`'s keyword arguments."""
    return Started(lambda: LiveSession(url, config, **options))


def resume(url: str, store: SessionStore, session_id: str, **options: Any) -> resuming[LiveSession]:
    """``async with resume(url, store, session_id) as live:`` — take over a session another process kept in
    ``store`` (it crashed, or was redeployed): take its lease (``SessionLeased`` while a live worker holds it;
    ``wait=`` seconds for a dead one's lease to lapse), restore its snapshot, reconnect with the stored handle
    and replay exactly the unconfirmed messages. ``owner``, ``lease_ttl`` and ``wait`` go to
    ``livestate.store.take_over``; other options are :class:`LiveSession`'s."""
    take = {k: options.pop(k) for k in ("owner", "lease_ttl", "wait") if k in options}
    return resuming(store, session_id, lambda config, **kw: LiveSession(url, config, **kw, **options), **take)
