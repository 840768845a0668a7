"""The google-genai transport: livestate's command executor over the official SDK's live connections.

For applications written on ``google-genai``: the SDK opens each connection (``client.aio.live.connect``
with a ``LiveConnectConfig`` carrying the resumption handle), every message it yields is converted to
livestate's wire types and fed to the session, and commands are carried out with the SDK's send methods.
The public face is the websockets driver's: ``send``, ``async for``, ``state``, ``close``.

The SDK's habits, handled here: ``connect()`` consumes ``setupComplete`` itself (the driver hands the session
an equivalent one); ``receive()`` stops at every ``turnComplete`` (the driver keeps calling it); every close,
a clean 1000 included, surfaces as ``APIError(code)`` (the driver reports the code as the close);
``transparent`` is refused for the Gemini API (so is it by ``SessionConfig``).

The SDK connects through websockets with its default ``websockets.client`` logger, which at DEBUG shows the
``x-goog-api-key`` (or ``Authorization``) header and the handles in ``setup`` and resumption updates. While a
session of this driver is open, a ``livestate.drivers.redact.SecretFilter`` sits on that logger to mask them;
it is taken off when the last such session closes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from google.genai import Client, errors, types
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from livestate import commands as c
from livestate import wire
from livestate.buffer import ReplayBuffer
from livestate.drivers.executor import CommandExecutor, Item, Link, LinkClosed, Started
from livestate.drivers.redact import guard
from livestate.drivers.telemetry import Telemetry
from livestate.drivers.websockets import handshake_failure, link_closed
from livestate.errors import ProtocolError
from livestate.events import Event
from livestate.policy import SessionConfig
from livestate.session import SessionSnapshot
from livestate.store import SessionStore, StorePersistence, resuming
from livestate.wire.codec import structure, unstructure

__all__ = ["GenaiLiveSession", "Item", "connect", "from_sdk", "live_connect_config", "resume"]


def live_connect_config(setup: wire.Setup) -> types.LiveConnectConfig:
    """The SDK's ``LiveConnectConfig`` for a livestate setup (handle and ``transparent`` included)."""
    body = dict(unstructure(setup)["setup"])
    body.pop("model", None)
    return types.LiveConnectConfig.model_validate(body)


def _plain(value: Any) -> Any:
    """An SDK model dump made JSON-like: bytes as standard base64, enums as their values."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, enum.Enum):
        return value.value
    return value


def from_sdk(message: types.LiveServerMessage) -> wire.ServerMessage:
    """Convert a message the SDK yielded to livestate's wire type, every field included."""
    frame = _plain(message.model_dump(mode="python", by_alias=True, exclude_none=True))
    activity = frame.get("voiceActivity")
    if isinstance(activity, dict) and "voiceActivityType" in activity:
        activity["type"] = activity.pop("voiceActivityType")  # the wire key the SDK renamed
    if not frame:
        return wire.UnknownMessage(keys=(), raw={})
    converted = structure(frame)
    if isinstance(
        converted, wire.ClientMessage
    ):  # pragma: no cover - a server message always has server keys
        raise ProtocolError("the SDK yielded a client message")
    return converted


class GenaiLiveSession(CommandExecutor):
    """A Live API session kept alive through google-genai. Create it with :func:`connect`."""

    def __init__(
        self,
        client: Client,
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
        self.client = client
        # The SDK picks websockets' default logger: mask secrets on it while this session is open.
        self._release_log_filter = guard(logging.getLogger("websockets.client"))

    async def close(self) -> tuple[tuple[int, wire.ClientMessage], ...]:
        """Close the session (see ``CommandExecutor.close``) and release the log filter this session holds."""
        try:
            return await super().close()
        finally:
            self._release_log_filter()

    async def _open(self, link: Link, setup: wire.Setup) -> None:
        manager = self.client.aio.live.connect(model=setup.model, config=live_connect_config(setup))
        try:
            sdk_session = await manager.__aenter__()
        except errors.APIError as exc:
            raise _closed(exc) from None
        except (OSError, ConnectionClosed, InvalidHandshake, InvalidURI, asyncio.TimeoutError) as exc:
            raise handshake_failure(exc) from None
        link.conn = (manager, sdk_session)

    async def _receive(self, link: Link) -> AsyncIterator[types.LiveServerMessage | wire.ServerMessage]:
        _, sdk_session = link.conn
        if sdk_session.setup_complete is None:
            # connect() read a first frame that was not setupComplete (an error frame: the SDK keeps no
            # trace of it): the setup was refused.
            yield wire.ServerError(message="the server answered setup without setupComplete")
            raise LinkClosed(1006, "setup refused")
        # connect() read setupComplete already; the session must see one to go live.
        yield wire.SetupComplete(session_id=sdk_session.session_id)
        try:
            while True:  # receive() ends at each turnComplete; the connection does not
                async for message in sdk_session.receive():
                    yield message
        except errors.APIError as exc:
            raise _closed(exc) from None
        except ConnectionClosed as exc:
            raise link_closed(exc) from None

    def _decode(self, frame: types.LiveServerMessage | wire.ServerMessage) -> wire.ServerMessage:
        # What the SDK parsed, converted; the frames this driver makes up itself are wire messages already.
        return from_sdk(frame) if isinstance(frame, types.LiveServerMessage) else frame

    async def _send(self, link: Link, message: wire.ClientMessage) -> None:
        _, sdk_session = link.conn
        body = json.dumps(next(iter(unstructure(message).values())))
        try:
            if isinstance(message, wire.RealtimeInput):
                realtime = types.LiveClientRealtimeInput.model_validate_json(body)
                fields = {k: v for k, v in realtime if v is not None}
                if len(fields) == 1 and "media_chunks" not in fields:
                    await sdk_session.send_realtime_input(**fields)
                else:  # several streams in one message: the SDK's generic send keeps them in one frame
                    await sdk_session.send(input=realtime)
            elif isinstance(message, wire.ClientContent):
                content = types.LiveClientContent.model_validate_json(body)
                await sdk_session.send_client_content(
                    turns=content.turns or [], turn_complete=bool(content.turn_complete)
                )
            elif isinstance(message, wire.ToolResponse):
                response = types.LiveClientToolResponse.model_validate_json(body)
                await sdk_session.send_tool_response(function_responses=response.function_responses or [])
        except ConnectionClosed as exc:
            raise link_closed(exc) from None

    async def _close(self, link: Link, code: int, reason: str) -> None:
        manager, _ = link.conn
        with contextlib.suppress(Exception):
            await manager.__aexit__(None, None, None)  # the SDK closes with 1000; code and reason are lost


def _closed(exc: errors.APIError) -> LinkClosed:
    code = exc.code if isinstance(exc.code, int) else 1006
    return LinkClosed(code, str(exc.message or exc.status or ""))


def connect(client: Client, config: SessionConfig, **options: Any) -> Started[GenaiLiveSession]:
    """``async with connect(client, config) as live:`` — a :class:`GenaiLiveSession`, started, and closed on
    exit. ``client`` is a ``google.genai.Client`` (API key, Vertex credentials, ``http_options`` as usual)."""
    return Started(lambda: GenaiLiveSession(client, config, **options))


def resume(
    client: Client, store: SessionStore, session_id: str, **options: Any
) -> resuming[GenaiLiveSession]:
    """``async with resume(client, store, session_id) as live:`` — take over a session kept in ``store`` (see
    ``livestate.drivers.websockets.resume``)."""
    take = {k: options.pop(k) for k in ("owner", "lease_ttl", "wait") if k in options}
    return resuming(
        store, session_id, lambda config, **kw: GenaiLiveSession(client, config, **kw, **options), **take
    )
