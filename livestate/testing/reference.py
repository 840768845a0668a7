"""A synchronous reference transport: a :class:`~livestate.Session` driven by hand, for tests.

``ReferenceDriver`` carries out every command the way a real transport must (a ``ReplayBuffer`` keeps the
payloads, replays go out before anything new, handed-back messages are filled in), but without sockets or a
clock: the test feeds events, lets time pass with :meth:`~ReferenceDriver.advance`, and reads what went on
the wire, per connection. Use it to test your own handling of livestate's commands and notices::

    d = ReferenceDriver(Session(config)).live()       # Connect + setupComplete
    d.send(wire.RealtimeInput(text="hello"))
    d.server(wire.SessionResumptionUpdate(new_handle="h1", resumable=True))
    d.close(1006)                                      # the connection drops
    d.advance(1.0)                                     # backoff timers fire
    d.server(wire.SetupComplete())                     # the resume: the buffer is replayed
    assert d.wire_log[-1] == (2, wire.RealtimeInput(text="hello"))

A model of your own (a fake server, an application's bookkeeping) can follow along: ``on_command`` sees every
command before the driver carries it out, ``on_wire`` every client message as it goes on the wire. Raising
from either fails the test at the step that broke the rule::

    def on_wire(connection: int, message: wire.ClientMessage) -> None:
        assert server.live, "a client message went out before setupComplete"
        server.received.append(message)

    d = ReferenceDriver(Session(config), on_wire=on_wire)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import TypeVar

import attrs

from livestate import commands, wire
from livestate.buffer import ReplayBuffer
from livestate.events import Connect, ConnectionClosed, Event, MessageReceived, SendRequested, TimerFired
from livestate.session import Session

__all__ = ["ReferenceDriver", "due_timers"]

C = TypeVar("C")


def due_timers(session: Session, until: float) -> Iterator[TimerFired]:
    """The ``TimerFired`` events due by ``until``, earliest first. Lazy: handle each one before asking for
    the next, since handling it may arm or cancel timers."""
    while (deadline := session.next_deadline()) is not None and deadline <= until:
        armed = session.deadlines()
        timer = min(armed, key=lambda t: (armed[t], t.value))
        yield TimerFired(at=deadline, timer=timer)


@attrs.define
class ReferenceDriver:
    """A session plus a hand-moved clock, a ``ReplayBuffer`` and a record of everything that happened.

    ``on_command`` and ``on_wire`` (keyword-only) let a test's own model follow every command and every client
    message on the wire; what they raise propagates out of the call that fed the event."""

    session: Session
    #: The clock: the ``at`` of the events this driver makes.
    now: float = 0.0
    buffer: ReplayBuffer = attrs.field(factory=ReplayBuffer)
    #: Every event handled, in order.
    events: list[Event] = attrs.field(factory=list)
    #: Every command, with the ``at`` of the event that produced it.
    timeline: list[tuple[float, commands.Command]] = attrs.field(factory=list)
    #: Per connection number: the client messages that went on the wire, ``setup`` first.
    sent: dict[int, list[wire.ClientMessage]] = attrs.field(factory=lambda: defaultdict(list))
    #: ``(connection, message)`` for every client message after ``setup``, in wire order.
    wire_log: list[tuple[int, wire.ClientMessage]] = attrs.field(factory=list)
    #: Connections the session closed itself.
    closed_by_client: list[int] = attrs.field(factory=list)
    #: Handed-back messages by seq (from ``MessagesDropped`` / ``MessagesUnconfirmed``, filled in).
    handed_back: dict[int, wire.ClientMessage] = attrs.field(factory=dict)
    #: Called with every command, in order, before the driver carries it out (so :attr:`buffer` is still as
    #: the command found it: a ``TrimThrough`` has not trimmed yet).
    on_command: Callable[[commands.Command], None] | None = attrs.field(default=None, kw_only=True)
    #: Called with every event and all its commands once the session handled it, before any command is carried
    #: out: what a driver's store persistence observes (``StorePersistence.observe``).
    on_event: Callable[[Event, tuple[commands.Command, ...]], None] | None = attrs.field(
        default=None, kw_only=True
    )
    #: Called with ``(connection, message)`` for every client message as it goes on the wire after ``setup``
    #: (sent, or replayed from the buffer), in wire order: what a server would receive.
    on_wire: Callable[[int, wire.ClientMessage], None] | None = attrs.field(default=None, kw_only=True)

    @property
    def log(self) -> list[commands.Command]:
        """Every command, in order."""
        return [command for _, command in self.timeline]

    def feed(self, event: Event) -> tuple[commands.Command, ...]:
        """Handle ``event`` and carry out its commands; return them."""
        out = self.session.handle(event)
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event, out)
        released: dict[int, wire.ClientMessage] = {}
        for command in out:
            self.timeline.append((event.at, command))
            self._carry_out(command, released)
        return out

    def _carry_out(self, command: commands.Command, released: dict[int, wire.ClientMessage]) -> None:
        if self.on_command is not None:
            self.on_command(command)
        connection = self.session.connection
        if isinstance(command, commands.OpenConnection | commands.ReconnectWithHandle):
            self.sent[command.connection].append(command.setup)
        elif isinstance(command, commands.SendMessage):
            self._put_on_wire(connection, command.message)
        elif isinstance(command, commands.CloseConnection):
            self.closed_by_client.append(connection)
        elif isinstance(command, commands.MessagesDropped | commands.MessagesUnconfirmed):
            self.handed_back.update((seq, released[seq]) for seq in command.seqs if seq in released)
        pairs = self.buffer.apply(command)
        if isinstance(command, commands.ReplayBuffered):
            for _, message in pairs:
                self._put_on_wire(connection, message)
        elif isinstance(command, commands.DropBuffered):
            released.update(pairs)

    def _put_on_wire(self, connection: int, message: wire.ClientMessage) -> None:
        self.sent[connection].append(message)
        self.wire_log.append((connection, message))
        if self.on_wire is not None:
            self.on_wire(connection, message)

    # --- time ---------------------------------------------------------------------------------------

    def at(self, t: float) -> ReferenceDriver:
        """Let time pass until ``t`` (timers fire on the way); returns the driver, for chaining."""
        self.advance(t - self.now)
        return self

    def advance(self, dt: float) -> None:
        """Let ``dt`` seconds pass: every timer due meanwhile fires, at its deadline."""
        target = self.now + dt
        self.fire_due_timers(target)
        self.now = target

    def fire_due_timers(self, until: float) -> None:
        """Fire every timer due by ``until``, at its own deadline (the clock moves to each)."""
        for fired in due_timers(self.session, until):
            self.now = max(self.now, fired.at)
            self.feed(fired)

    # --- the application and the server -------------------------------------------------------------

    def connect(self) -> tuple[commands.Command, ...]:
        """The application starts the session."""
        return self.feed(Connect(at=self.now))

    def live(self) -> ReferenceDriver:
        """Connect and complete setup."""
        self.connect()
        self.server(wire.SetupComplete())
        return self

    def server(
        self, message: wire.ServerMessage, *, connection: int | None = None
    ) -> tuple[commands.Command, ...]:
        """A server message arrives (on the current connection unless ``connection`` says otherwise)."""
        return self.feed(MessageReceived(at=self.now, message=message, connection=connection))

    def send(self, message: wire.ClientMessage) -> tuple[commands.Command, ...]:
        """The application sends ``message``."""
        return self.feed(SendRequested(at=self.now, message=message))

    def close(
        self, code: int, reason: str = "", *, connection: int | None = None
    ) -> tuple[commands.Command, ...]:
        """A connection ends (1006: no close frame)."""
        return self.feed(ConnectionClosed(at=self.now, code=code, reason=reason, connection=connection))

    def of(self, kind: type[C]) -> list[C]:
        """Every command (or notice) of ``kind``, in order."""
        return [c for _, c in self.timeline if isinstance(c, kind)]

    def notices(self, kind: type[C]) -> list[C]:
        """The same as :meth:`of`."""
        return self.of(kind)
