"""``FakeLiveServer``: the Live API's resumption behaviour on loopback, with faults, and a ledger.

It speaks the wire protocol over real WebSockets on 127.0.0.1: ``setupComplete``; resumption updates whose
handles name a snapshot of the conversation (resuming from a handle forgets what came after it, as the
service does); per-connection ``lastConsumedClientMessageIndex`` when the setup asks for ``transparent``;
generation with ``resumable: false``; tool calls; ``goAway`` then a close at the deadline (optionally in
silence); abrupt drops (the client sees 1006); 1011s; rejected resumes (1007); a resume while the old
connection is still open rejected with 1011; setups left unanswered (``answer_setups``), so a client can be
caught in the middle of a reconnect. Faults are scripted per connection or drawn from a seed.

The ledger records, per logical session, the conversation the server ends up with, so a test can prove that
nothing was lost or duplicated.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import itertools
import json
import logging
import random
import ssl as ssl_module
from collections.abc import Callable
from typing import Any

import attrs
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from livestate import wire
from livestate.drivers.redact import redacting_logger
from livestate.errors import ProtocolError, UsageError

__all__ = ["FAULT_KINDS", "FakeLiveServer", "Fault", "FaultPlan", "LogicalSession", "tag_of"]


def tag_of(message: wire.ClientMessage) -> str:
    """How the ledger names a client message: ``realtimeInput.text`` when set, else its encoded frame."""
    if isinstance(message, wire.RealtimeInput) and message.text is not None:
        return message.text
    if isinstance(message, wire.ToolResponse) and message.function_responses:
        return "response:" + ",".join(str(r.id) for r in message.function_responses)
    return wire.encode(message)


#: The faults FakeLiveServer can inject.
FAULT_KINDS = ("goaway", "goaway_silent", "drop", "error_1011", "reject_next_resume")


def _at_least(minimum: float) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= minimum:
            raise UsageError(
                f"{type(instance).__name__}.{attribute.name} must be a number >= {minimum}, got {value!r}"
            )

    return check


def _kind(kind: object) -> None:
    if kind not in FAULT_KINDS:
        raise UsageError(f"Fault.kind must be one of {', '.join(FAULT_KINDS)}, got {kind!r}")


def _rate(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    _at_least(0.0)(instance, attribute, value)
    if value > 1:
        raise UsageError(f"FaultPlan.{attribute.name} is a probability in [0, 1], got {value!r}")


def _faults(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, tuple) or not all(isinstance(fault, Fault) for fault in value):
        raise UsageError(f"FaultPlan.faults must be a tuple of Fault, got {value!r}")


@attrs.frozen(kw_only=True)
class Fault:
    """One scripted fault: ``kind`` is ``"goaway"``, ``"goaway_silent"``, ``"drop"``, ``"error_1011"`` or
    ``"reject_next_resume"``. It happens on connection number ``connection`` (1-based, server-wide) after
    ``after_messages`` client messages, or, with ``on_text``, right after the client message whose
    ``realtimeInput.text`` is ``on_text`` (on any connection when ``connection`` is 0)."""

    kind: str = attrs.field(validator=lambda _, __, kind: _kind(kind))
    connection: int = attrs.field(default=0, validator=_at_least(0))
    after_messages: int = attrs.field(default=0, validator=_at_least(0))
    on_text: str | None = None

    def due(self, connection: int, received: list[str]) -> bool:
        """Whether this fault fires now."""
        if self.connection not in (0, connection):
            return False
        if self.on_text is not None:
            return bool(received) and received[-1] == self.on_text
        return self.after_messages == len(received)


@attrs.frozen(kw_only=True)
class FaultPlan:
    """What goes wrong. Scripted faults happen exactly; random ones are drawn from ``seed``."""

    faults: tuple[Fault, ...] = attrs.field(default=(), validator=_faults)
    seed: int = 0
    #: Per client message: chance of an abrupt drop, of a 1011, of a goAway.
    drop_rate: float = attrs.field(default=0.0, validator=_rate)
    error_rate: float = attrs.field(default=0.0, validator=_rate)
    go_away_rate: float = attrs.field(default=0.0, validator=_rate)
    #: Chance that a resume is rejected (the handle is forgotten; the client sees 1007).
    reject_rate: float = attrs.field(default=0.0, validator=_rate)
    #: Seconds between a goAway and the close at its deadline.
    go_away_time_left: float = attrs.field(default=1.0, validator=_at_least(0.0))
    #: A connection lives at most this long: goAway at ``max_connection_age - go_away_time_left``.
    max_connection_age: float | None = attrs.field(
        default=None, validator=attrs.validators.optional(_at_least(0.0))
    )

    def __attrs_post_init__(self) -> None:
        if self.max_connection_age is not None and self.max_connection_age < self.go_away_time_left:
            raise UsageError("FaultPlan.max_connection_age must be at least go_away_time_left")


@attrs.define
class LogicalSession:
    """One server-side conversation, across the connections that resumed it."""

    id: int
    #: Everything consumed into the current conversation, in order (tags).
    conversation: list[str] = attrs.field(factory=list)
    #: Issued handles and the conversation (and known tool calls) each names.
    handles: dict[str, tuple[tuple[str, ...], frozenset[str]]] = attrs.field(factory=dict)
    calls: set[str] = attrs.field(factory=set)
    connections: int = 0
    open_connection: ServerConnection | None = None
    #: toolResponses for calls this conversation never issued (must stay empty).
    unknown_tool_responses: list[str] = attrs.field(factory=list)
    #: Set when a rejected resume replaced this session with a fresh one.
    replaced_by: int | None = None


class FakeLiveServer:
    """A Live API server on 127.0.0.1 for tests, the demo and users' own tests.

    ``async with FakeLiveServer(plan) as server:`` then connect to ``server.url`` (``ssl=`` serves TLS, for
    clients such as google-genai that insist on ``wss://``; ``binary_frames=True`` sends pretty-printed binary
    frames, as the Gemini API does). Knobs compress time:
    ``update_every`` client messages (and after each turn) bring a resumption update; ``index_lag`` is how
    many received messages a handle may leave out (transparent); ``time_lag`` the same in seconds for
    handle-only sessions (keep it within the client's guard window).
    """

    def __init__(
        self,
        plan: FaultPlan | None = None,
        *,
        update_every: int = 4,
        index_lag: int = 2,
        time_lag: float = 0.05,
        turn_frames: int = 3,
        frame_interval: float = 0.005,
        vertex: bool = False,
        ssl: ssl_module.SSLContext | None = None,
        binary_frames: bool = False,
        refuse_setup: wire.ServerError | None = None,
        handshake_status: int | None = None,
        answer_setups: int | None = None,
        on_consume: Callable[[int, wire.ClientMessage], None] | None = None,
    ) -> None:
        if answer_setups is not None and (isinstance(answer_setups, bool) or answer_setups < 0):
            raise UsageError(f"answer_setups must be None or an int >= 0, got {answer_setups!r}")
        self.plan = plan or FaultPlan()
        #: Answer only this many ``setup`` messages (server-wide, in the order they arrive); every later one
        #: is held: read but not answered (no ``setupComplete``, no effect on the ledger) until
        #: :meth:`release_setups`, while the client waits in the middle of its reconnect. A held connection
        #: whose client goes away meanwhile is forgotten. ``None``: answer every setup.
        self.answer_setups = answer_setups
        #: Called with the connection's number (1-based, server-wide) and the message each time a client
        #: message is consumed into the ledger (benchmarks time a takeover's first replayed frame with it).
        self.on_consume = on_consume
        #: ``setup`` messages received, and how many of them were held (ever; ``holding`` is the number now).
        self.setups = 0
        self.setups_held = 0
        self.holding = 0
        self._released = asyncio.Event()
        #: Answer every ``setup`` with this in-band error frame (and a 1007 close) instead of setupComplete.
        self.refuse_setup = refuse_setup
        #: Refuse every WebSocket handshake with this HTTP status (e.g. 403), before any frame.
        self.handshake_status = handshake_status
        self.binary_frames = binary_frames
        self.ssl = ssl
        self.update_every = update_every
        self.index_lag = index_lag
        self.time_lag = time_lag
        self.turn_frames = turn_frames
        self.frame_interval = frame_interval
        self.vertex = vertex
        self.sessions: list[LogicalSession] = []
        self.connections = 0
        self.rejected_resumes = 0
        self.faults_done: list[tuple[int, str]] = []
        #: Resumes still to reject because of a scripted ``reject_next_resume``.
        self.reject_next = 0
        #: Positions in ``plan.faults`` that have fired.
        self.fired: set[int] = set()
        self._random = random.Random(self.plan.seed)
        self._handles = itertools.count(1)
        self._call_ids = itertools.count(1)
        self._server: Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:<port>`` (``wss://`` when serving TLS)."""
        assert self._server is not None, "use `async with FakeLiveServer()`"
        host, port = next(iter(self._server.sockets)).getsockname()[:2]
        return f"{'wss' if self.ssl else 'ws'}://{host}:{port}"

    async def __aenter__(self) -> FakeLiveServer:
        self._server = await serve(
            self._serve,
            "127.0.0.1",
            0,
            ping_interval=None,
            max_size=None,
            ssl=self.ssl,
            logger=redacting_logger(logging.getLogger("websockets.server")),  # masks keys and handles
            process_request=self._handshake,
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()

    def frame(self, message: wire.ServerMessage) -> str | bytes:
        """How a message goes on the wire: compact text, or (``binary_frames``) pretty-printed UTF-8 binary
        with a trailing newline, as the Gemini API sends it."""
        if not self.binary_frames:
            return wire.encode(message)
        return (json.dumps(wire.codec.unstructure(message), indent=2, ensure_ascii=False) + "\n").encode()

    def release_setups(self) -> None:
        """Stop holding setups: every held connection whose client is still there gets its answer now, and
        later setups are answered at once (``answer_setups`` becomes ``None``)."""
        self.answer_setups = None
        self._released.set()

    def session_of(self, handle: str) -> LogicalSession | None:
        """The logical session that issued ``handle`` (and has not forgotten it)."""
        for session in self.sessions:
            if handle in session.handles:
                return session
        return None

    def _handshake(self, connection: ServerConnection, request: Any) -> Any:
        if self.handshake_status is None:
            return None
        reason = f"fake server refuses the handshake with HTTP {self.handshake_status}"
        return connection.respond(http.HTTPStatus(self.handshake_status), reason + "\n")

    # --- one connection ---------------------------------------------------------------------------

    async def _serve(self, ws: ServerConnection) -> None:
        self.connections += 1
        number = self.connections
        try:
            setup = wire.decode_client(await ws.recv())
        except (ConnectionClosed, ProtocolError):
            return
        if not isinstance(setup, wire.Setup):
            await ws.close(1007, "Request contains an invalid argument.")
            return
        self.setups += 1
        if self.answer_setups is not None and self.setups > self.answer_setups and not await self._hold(ws):
            return
        if self.refuse_setup is not None:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(self.frame(self.refuse_setup))
                await ws.close(1007, self.refuse_setup.message or "Request contains an invalid argument.")
            return
        resumption = setup.session_resumption
        handle = resumption.handle if resumption else None
        transparent = bool(resumption and resumption.transparent)
        session = await self._attach(ws, handle)
        if session is None:
            return
        connection = _Connection(self, ws, number, session, transparent, resumption is not None)
        await connection.run()

    async def _hold(self, ws: ServerConnection) -> bool:
        """Leave a setup unanswered until :meth:`release_setups`; False when the client went away first."""
        self.setups_held += 1
        self.holding += 1
        released = asyncio.ensure_future(self._released.wait())
        closed = asyncio.ensure_future(ws.wait_closed())
        try:
            await asyncio.wait({released, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.holding -= 1
            released.cancel()
            closed.cancel()
        return not closed.done() and ws.state is State.OPEN

    async def _attach(self, ws: ServerConnection, handle: str | None) -> LogicalSession | None:
        if handle is None:
            session = LogicalSession(id=len(self.sessions) + 1)
            self.sessions.append(session)
        else:
            found = self.session_of(handle)
            rejected = self.reject_next > 0 or self._random.random() < self.plan.reject_rate
            self.reject_next = max(0, self.reject_next - 1)
            if found is None or rejected:
                if found is not None:
                    found.handles.pop(handle)
                self.rejected_resumes += 1
                await ws.close(1007, "Request contains an invalid argument.")
                return None
            if found.open_connection is not None:
                await ws.close(1011, "Internal error encountered.")  # the old connection is still open
                return None
            session = found
            conversation, calls = session.handles[handle]
            session.conversation = list(conversation)
            session.calls = set(calls)
        session.connections += 1
        session.open_connection = ws
        return session

    def issue_handle(self, session: LogicalSession, included: int, received: list[str]) -> str:
        handle = f"fake-handle-{next(self._handles)}"
        base = len(session.conversation) - len(received)
        snapshot = tuple(session.conversation[: base + included])
        session.handles[handle] = (snapshot, frozenset(session.calls))
        return handle


@attrs.define
class _Connection:
    server: FakeLiveServer
    ws: ServerConnection
    number: int
    session: LogicalSession
    transparent: bool
    updates: bool
    received: list[str] = attrs.field(factory=list)
    received_at: list[float] = attrs.field(factory=list)
    acked: int = 0
    generating: bool = False
    going_away: bool = False
    silent: bool = False
    pending_calls: set[str] = attrs.field(factory=set)

    async def send(self, message: wire.ServerMessage) -> None:
        if not self.silent:
            with contextlib.suppress(ConnectionClosed):
                await self.ws.send(self.server.frame(message))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        session_id = f"fake-session-{self.session.id}" if self.server.vertex else None
        await self.send(wire.SetupComplete(session_id=session_id))
        plan = self.server.plan
        if plan.max_connection_age is not None:
            self._spawn(self._go_away_later(max(0.0, plan.max_connection_age - plan.go_away_time_left)))
        try:
            async for raw in self.ws:
                message = wire.decode_client(raw)
                if isinstance(message, wire.Setup):
                    await self._close(1007, "Request contains an invalid argument.")
                    return
                await self._consume(message, loop.time())
                if await self._maybe_fault():
                    return
        except (ConnectionClosed, ProtocolError):
            pass
        finally:
            if self.session.open_connection is self.ws:
                self.session.open_connection = None

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.server._tasks.add(task)
        task.add_done_callback(self.server._tasks.discard)

    async def _consume(self, message: wire.ClientMessage, now: float) -> None:
        tag = tag_of(message)
        if self.server.on_consume is not None:
            self.server.on_consume(self.number, message)
        self.received.append(tag)
        self.received_at.append(now)
        self.session.conversation.append(tag)
        if isinstance(message, wire.ToolResponse):
            for response in message.function_responses or ():
                if response.id not in self.session.calls:
                    self.session.unknown_tool_responses.append(str(response.id))
                self.pending_calls.discard(str(response.id))
            if not self.pending_calls:
                self._spawn(self._generate())
            return
        text = message.text if isinstance(message, wire.RealtimeInput) else None
        if text and text.startswith("tool:"):
            call = f"call-{text}-{next(self.server._call_ids)}"  # unique, as the service's ids are
            self.session.calls.add(call)
            self.pending_calls.add(call)
            await self._update(resumable=False)
            await self.send(
                wire.ToolCall(function_calls=(wire.FunctionCall(id=call, name="lookup", args={}),))
            )
        elif text and text.endswith("?") and not self.generating:
            self._spawn(self._generate())
        elif (
            len(self.received) % self.server.update_every == 0
            and not self.generating
            and not self.pending_calls
        ):
            await self._update(resumable=True)

    async def _update(self, *, resumable: bool) -> None:
        if not self.updates or self.silent:
            return
        if not resumable:
            await self.send(wire.SessionResumptionUpdate(resumable=False))
            return
        if self.transparent:
            lag = self.server._random.randint(0, self.server.index_lag)
            included = max(self.acked, len(self.received) - lag)
        else:
            horizon = asyncio.get_running_loop().time() - self.server.time_lag
            included = max(self.acked, sum(1 for t in self.received_at if t < horizon))
        self.acked = included
        handle = self.server.issue_handle(self.session, included, self.received)
        index = wire.MessageIndex(included) if self.transparent else None
        await self.send(
            wire.SessionResumptionUpdate(
                new_handle=handle, resumable=True, last_consumed_client_message_index=index
            )
        )

    async def _generate(self) -> None:
        self.generating = True
        try:
            await self._update(resumable=False)
            for i in range(self.server.turn_frames):
                await asyncio.sleep(self.server.frame_interval)
                audio = wire.Blob(mime_type="audio/pcm;rate=24000", data="AAAA" * (i + 1))
                await self.send(
                    wire.ServerContent(model_turn=wire.Content(parts=(wire.Part(inline_data=audio),)))
                )
            await self.send(wire.ServerContent(generation_complete=True))
            await self.send(wire.ServerContent(turn_complete=True))
        finally:
            self.generating = False
        await self._update(resumable=True)

    async def _maybe_fault(self) -> bool:
        """Apply a fault due after this message; True when the connection is finished."""
        plan, rng = self.server.plan, self.server._random
        kinds = []
        for position, fault in enumerate(plan.faults):
            if position not in self.server.fired and fault.due(self.number, self.received):
                self.server.fired.add(position)  # once: a replay of the same message does not fire it again
                kinds.append(fault.kind)
        if rng.random() < plan.drop_rate:
            kinds.append("drop")
        if rng.random() < plan.error_rate:
            kinds.append("error_1011")
        if rng.random() < plan.go_away_rate:
            kinds.append("goaway")
        for kind in kinds:
            if kind not in ("goaway", "goaway_silent"):
                self.server.faults_done.append((self.number, kind))
            if kind == "drop":
                self.ws.transport.abort()
                return True
            if kind == "error_1011":
                await self._close(1011, "Internal error encountered.")
                return True
            if kind in ("goaway", "goaway_silent") and not self.going_away:
                self._spawn(self._go_away_later(0.0, silent=kind == "goaway_silent"))
            if kind == "reject_next_resume":
                self.server.reject_next += 1
        return False

    async def _close(self, code: int, reason: str) -> None:
        """Close from inside the read loop, reading (and discarding) what the client sends meanwhile.

        websockets pauses reading while more than ``max_queue`` frames wait unread and resumes only when the
        handler has read them down to the low-water mark; a handler that stopped reading would then never see
        the client's close frame, and ``ws.close()`` would hang for ``close_timeout`` (10 s) with the
        connection (and its logical session) still open."""
        closing = asyncio.ensure_future(self.ws.close(code, reason))
        with contextlib.suppress(ConnectionClosed):
            async for _ in self.ws:
                pass
        await closing

    async def _go_away_later(self, delay: float, *, silent: bool = False) -> None:
        await asyncio.sleep(delay)
        if self.going_away:
            return
        self.going_away = True
        self.server.faults_done.append((self.number, "goaway_silent" if silent else "goaway"))
        time_left = self.server.plan.go_away_time_left
        await self.send(wire.GoAway(time_left=wire.Duration.from_seconds(time_left)))
        self.silent = silent
        await asyncio.sleep(time_left)
        with contextlib.suppress(ConnectionClosed):
            await self.ws.close(1008, "The operation was aborted.")
