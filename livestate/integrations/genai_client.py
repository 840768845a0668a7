"""A stand-in for ``google.genai.Client`` whose live sessions are kept alive by livestate.

Frameworks such as pipecat and LiveKit Agents talk to the Live API only through a client's
``aio.live.connect(model=..., config=...)`` and the session it yields (``send_realtime_input``,
``send_client_content``, ``send_tool_response``, ``receive``, ``close``). :class:`LiveClient` offers the same
surface, carried by :class:`livestate.drivers.genai.GenaiLiveSession`:

- the ``LiveConnectConfig`` becomes a livestate ``Setup`` through the SDK's own converters, so every field the
  SDK would send is carried (``sessionResumption`` excepted: livestate owns it);
- every send goes through a real ``google.genai.live.AsyncSession`` bound to a capturing socket, so the SDK
  itself turns the arguments into the frame it would send, which livestate then sends, buffers and replays;
- server messages are parsed by the same ``AsyncSession`` into ``LiveServerMessage`` objects; ``goAway``,
  resumption updates and ``setupComplete`` are consumed by livestate, so the framework never sees a reason to
  reconnect by itself;
- a cut turn (``TurnAborted``) arrives as ``serverContent`` with ``interrupted`` and ``turnComplete``, so the
  framework never waits for a ``turnComplete`` that will not come;
- ``SessionFailed`` surfaces as the SDK's ``errors.APIError`` from ``receive()`` and from the send methods;
- ``close()`` parks the livestate session (its snapshot, handle and unconfirmed messages) on the client, and
  the next ``connect()`` resumes it with livestate's handle and the new config (new tools or options), so a
  framework-initiated reconnect continues the same server session and replays what was not confirmed.

Every notice is logged here and handed to ``on_notice`` (the framework adapters re-seed history and raise
their own events there). One client carries one session at a time, as each framework session owns a client.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import typing
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import attrs
from google.genai import Client, errors, live, types
from google.genai import _common as sdk_common
from google.genai import _live_converters as sdk_converters
from google.genai import _transformers as sdk_transformers
from websockets.exceptions import ConnectionClosedOK
from websockets.frames import Close

from livestate import commands as c
from livestate import wire
from livestate.buffer import ReplayBuffer
from livestate.drivers.genai import GenaiLiveSession
from livestate.errors import ProtocolError, SessionFailedError, UsageError
from livestate.machine import TERMINAL
from livestate.policy import Backend, SessionConfig
from livestate.session import SessionSnapshot

__all__ = ["LiveClient", "LiveSession", "NoticeHandler", "setup_from_sdk"]

logger = logging.getLogger(__name__)

#: ``on_notice(session, notice)``: called (and awaited when it returns an awaitable) for every notice, from
#: the task that iterates ``receive()``, before the next server message is yielded.
NoticeHandler = Callable[["LiveSession", c.Notice], Awaitable[None] | None]

#: Notices logged at WARNING: something the application gave was handed back, or a call was orphaned.
_LOSSY = (c.MessagesDropped, c.MessagesUnconfirmed, c.ToolCallsOrphaned, c.SessionFailed, c.FrameRejected)
_NOTICES = typing.get_args(c.Notice)
#: Server messages livestate consumes: the framework never sees them.
_CONSUMED = (wire.GoAway, wire.SessionResumptionUpdate, wire.SetupComplete)


async def setup_from_sdk(
    client: Client, model: str, config: types.LiveConnectConfigOrDict | None
) -> wire.Setup:
    """The livestate ``Setup`` for ``client.aio.live.connect(model=model, config=config)``: the ``setup`` frame
    the SDK itself would send (built by its own converters, every field included), without
    ``sessionResumption``, which livestate fills in on each connection. Raises ``ProtocolError`` if the SDK's
    frame does not decode (an SDK that changed its converters)."""
    api = client._api_client
    transformed = sdk_transformers.t_model(api, model)
    parameters = await live._t_live_connect_config(api, config)
    convert = (
        sdk_converters._LiveConnectParameters_to_vertex
        if api.vertexai
        else sdk_converters._LiveConnectParameters_to_mldev
    )
    request = sdk_common.convert_to_dict(
        convert(
            api_client=api,
            from_object=types.LiveConnectParameters(model=transformed, config=parameters).model_dump(
                exclude_none=True
            ),
        )
    )
    request = sdk_common.encode_unserializable_types(request)
    body: dict[str, Any] = dict(request.get("setup") or {})  # type: ignore[call-overload]
    body["model"] = transformed
    body.pop("sessionResumption", None)
    setup = wire.decode_client(json.dumps({"setup": body}))
    if not isinstance(setup, wire.Setup):  # pragma: no cover - the frame has one key, "setup"
        raise ProtocolError("setup: the SDK's setup frame did not decode to a setup")
    return setup


class _Capture:
    """The socket of an offline ``AsyncSession``: keeps what the SDK sends, hands it one frame to parse."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.frame: str = ""

    async def send(self, message: str | bytes) -> None:
        self.sent.append(message.decode() if isinstance(message, bytes) else message)

    async def recv(self, decode: bool | None = None) -> str:
        return self.frame

    def take(self) -> list[str]:
        sent, self.sent = self.sent, []
        return sent


def _api_error(failure: c.SessionFailed | SessionFailedError) -> errors.APIError:
    """What the SDK's session raises when its connection ends for good: ``APIError`` with a close code."""
    reason = failure.reason if isinstance(failure, c.SessionFailed) else str(failure.reason)
    return errors.APIError(
        1011, {"message": f"livestate: the session failed: {reason}", "status": "UNAVAILABLE"}
    )


@attrs.define
class _Parked:
    """A livestate session a framework closed, to be resumed by the next ``connect()``."""

    snapshot: SessionSnapshot
    buffer: ReplayBuffer
    at: float


class LiveSession:
    """What :meth:`LiveClient.aio.live.connect <LiveClient>` yields: the SDK session's API over a livestate
    session. Sends never fail for a transient outage (they are buffered and replayed); ``receive()`` ends at
    each ``turnComplete`` like the SDK's, and raises ``errors.APIError`` once the session failed."""

    def __init__(self, owner: LiveClient, live_session: GenaiLiveSession, *, continued: bool) -> None:
        self._owner = owner
        #: The livestate driver session carrying this one (its ``session`` is the pure core).
        self.live = live_session
        #: Whether this connect continued a session the framework closed (it resumes with livestate's handle).
        self.continued = continued
        self._capture = _Capture()
        self._sdk = live.AsyncSession(api_client=owner.client._api_client, websocket=self._capture)  # type: ignore[arg-type]
        self._closed = False
        #: Set by a ``Resumed(state_restored=False)`` with held input, cleared by a turn-completing re-seed.
        self._awaiting_reseed = False

    @property
    def session_id(self) -> str | None:
        """The server's session id (Vertex), as the SDK's session has it."""
        return None

    # --- the SDK's send methods -----------------------------------------------------------------

    async def send_realtime_input(self, **kwargs: Any) -> None:
        """``AsyncSession.send_realtime_input``: one of ``media``, ``audio``, ``audio_stream_end``, ``video``,
        ``text``, ``activity_start``, ``activity_end`` (the SDK checks the arguments)."""
        await self._sdk.send_realtime_input(**kwargs)
        await self._forward()

    async def send_client_content(self, **kwargs: Any) -> None:
        """``AsyncSession.send_client_content(turns=..., turn_complete=True)``."""
        await self._sdk.send_client_content(**kwargs)
        await self._forward()

    async def send_tool_response(self, **kwargs: Any) -> None:
        """``AsyncSession.send_tool_response(function_responses=...)``."""
        await self._sdk.send_tool_response(**kwargs)
        await self._forward()

    async def _forward(self) -> None:
        for frame in self._capture.take():
            message = wire.decode_client(frame)
            if self._closed:
                raise ConnectionClosedOK(Close(1000, "closed"), Close(1000, "closed"))
            try:
                await self.live.send(message)
            except SessionFailedError as exc:
                raise _api_error(exc) from None
            except UsageError:
                if self.live.session.state in TERMINAL:
                    raise ConnectionClosedOK(Close(1000, "closed"), Close(1000, "closed")) from None
                raise
            if isinstance(message, wire.ClientContent) and message.turn_complete:
                self._awaiting_reseed = False

    # --- receiving --------------------------------------------------------------------------------

    async def receive(self) -> AsyncIterator[types.LiveServerMessage]:
        """Server messages as the SDK yields them, up to and including the next ``turnComplete``. Notices go to
        the client's ``on_notice`` on the way; raises ``errors.APIError`` when the session failed."""
        while True:
            if self._closed:
                raise errors.APIError(1000, {"message": "the session is closed", "status": "CANCELLED"})
            try:
                item = await self.live.__anext__()
            except StopAsyncIteration:  # the session ended: as the SDK on a closed socket, raise
                raise errors.APIError(1000, {"message": "the session ended", "status": "CANCELLED"}) from None
            if isinstance(item, _CONSUMED):
                continue
            if isinstance(item, _NOTICES):
                cut = await self._on_notice(item)
                if cut is not None:
                    yield cut
                    return
                if isinstance(item, c.SessionFailed):
                    raise _api_error(item)
                continue
            message = await self._parse(typing.cast(wire.ServerMessage, item))
            if message is None:
                continue
            yield message
            if message.server_content is not None and message.server_content.turn_complete:
                return

    async def _parse(self, message: wire.ServerMessage) -> types.LiveServerMessage | None:
        self._capture.frame = wire.encode(message)
        try:
            return await self._sdk._receive()
        except errors.APIError as exc:  # an error frame: livestate acts on it; the SDK would have raised
            logger.warning("a server error frame was not passed to the framework: %s", exc)
            return None

    async def _on_notice(self, notice: c.Notice) -> types.LiveServerMessage | None:
        _log(notice)
        if isinstance(notice, c.Resumed) and not notice.state_restored:
            self._awaiting_reseed = True
        handler = self._owner.on_notice
        if handler is not None:
            result = handler(self, notice)
            if inspect.isawaitable(result):
                await result
        if (
            isinstance(notice, c.Resumed)
            and not notice.state_restored
            and notice.held
            and self._awaiting_reseed
        ):
            # The framework's re-seed did not complete a turn (or there was nothing to re-seed): complete it,
            # so the held input goes out now rather than after SessionConfig.reseed_timeout.
            await self.send_client_content(turn_complete=True)
        if isinstance(notice, c.TurnAborted):
            return types.LiveServerMessage(
                server_content=types.LiveServerContent(interrupted=True, turn_complete=True)
            )
        return None

    async def close(self) -> None:
        """End this session as the framework sees it. The livestate session is parked on the client, so the
        next ``connect()`` resumes it (same server session, unconfirmed messages replayed)."""
        if self._closed:
            return
        self._closed = True
        await self._owner._park(self.live)

    async def __aenter__(self) -> LiveSession:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()


def _log(notice: c.Notice) -> None:
    if isinstance(notice, _LOSSY):
        logger.warning("livestate: %r", notice)
    elif isinstance(notice, (c.Resumed, c.TurnAborted)):
        logger.info("livestate: %r", notice)
    else:
        logger.debug("livestate: %r", notice)


class _Live:
    def __init__(self, owner: LiveClient) -> None:
        self._owner = owner

    def connect(
        self, *, model: str, config: types.LiveConnectConfigOrDict | None = None
    ) -> contextlib.AbstractAsyncContextManager[LiveSession]:
        """``async with client.aio.live.connect(model=..., config=...) as session:``, as the SDK's."""
        return self._owner._connect(model, config)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._owner.client.aio.live, name)


class _Aio:
    def __init__(self, owner: LiveClient) -> None:
        self._owner = owner
        self.live = _Live(owner)

    async def aclose(self) -> None:
        """Close the parked session (if any), then the real client's async transport."""
        await self._owner.aclose()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._owner.client.aio, name)


class LiveClient:
    """Use in place of a ``google.genai.Client``: ``client.aio.live.connect()`` yields a :class:`LiveSession`;
    everything else is the wrapped ``client``'s.

    ``options`` are :class:`~livestate.SessionConfig` fields (timings, budgets …); by default the backend
    follows the client (``Backend.VERTEX`` with ``transparent`` when ``client.vertexai``, else the Gemini API
    with ``reseed_history``). ``on_notice(session, notice)`` sees every livestate notice. ``driver_options``
    go to :class:`~livestate.drivers.genai.GenaiLiveSession` (``journal``, ``on_command`` …).
    """

    def __init__(
        self,
        client: Client,
        *,
        options: Mapping[str, Any] | None = None,
        on_notice: NoticeHandler | None = None,
        driver_options: Mapping[str, Any] | None = None,
    ) -> None:
        #: The real google-genai client the connections are made with.
        self.client = client
        self.options = dict(options or {})
        self.on_notice = on_notice
        self.driver_options = dict(driver_options or {})
        self.aio = _Aio(self)
        #: How many times ``connect()`` went live (a framework reconnect counts; livestate's own do not).
        self.connects = 0
        self._parked: _Parked | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    @property
    def has_parked(self) -> bool:
        """Whether a closed session waits to be resumed by the next ``connect()``."""
        return self._parked is not None

    def session_config(self, setup: wire.Setup) -> SessionConfig:
        """The livestate config for ``setup``: the client's backend defaults, then ``options``."""
        vertex = bool(self.client._api_client.vertexai)
        defaults: dict[str, Any] = (
            {"backend": Backend.VERTEX, "transparent": True, "hold_for_reseed": True}
            if vertex
            else {"backend": Backend.GEMINI_API, "reseed_history": True}
        )
        return SessionConfig(setup=setup, **{**defaults, **self.options})

    @contextlib.asynccontextmanager
    async def _connect(
        self, model: str, config: types.LiveConnectConfigOrDict | None
    ) -> AsyncIterator[LiveSession]:
        setup = await setup_from_sdk(self.client, model, config)
        session_config = self.session_config(setup)
        parked, self._parked = self._parked, None
        restore = None
        after = 0.0
        if parked is not None:  # a framework-initiated reconnect: resume the parked session, new setup
            restore = (attrs.evolve(parked.snapshot, config=session_config), parked.buffer)
            after = max(0.0, asyncio.get_running_loop().time() - parked.at)
        carrier = GenaiLiveSession(
            self.client, session_config, restore=restore, restored_after=after, **self.driver_options
        )
        await carrier.start()
        try:
            await carrier.wait_live()
        except SessionFailedError as exc:
            await carrier.close()
            raise _api_error(exc) from None
        self.connects += 1
        session = LiveSession(self, carrier, continued=parked is not None)
        try:
            yield session
        finally:
            await session.close()

    async def _park(self, carrier: GenaiLiveSession) -> None:
        if carrier.session.state in TERMINAL:
            await carrier.close()
            return
        snapshot = carrier.session.snapshot()
        buffer = ReplayBuffer.from_items(carrier.buffer.items())
        at = asyncio.get_running_loop().time()
        handed = await carrier.close()  # the parked copy keeps these: they are replayed by the next connect
        self._parked = _Parked(snapshot, buffer, at)
        logger.debug("livestate: session parked with %d unconfirmed messages", len(handed))

    def discard_parked(self) -> tuple[tuple[int, wire.ClientMessage], ...]:
        """Forget the parked session; return its unconfirmed messages as ``(seq, message)`` pairs."""
        parked, self._parked = self._parked, None
        if parked is None:
            return ()
        held = dict(parked.buffer.items())
        return tuple((u.seq, held[u.seq]) for u in parked.snapshot.unconsumed if u.seq in held)

    async def aclose(self) -> None:
        """Forget the parked session (logging what it still held) and close the real client's transport."""
        left = self.discard_parked()
        if left:
            logger.warning("livestate: closed with %d unconfirmed messages never resumed", len(left))
        closer = getattr(self.client.aio, "aclose", None)
        if closer is not None:
            await closer()
