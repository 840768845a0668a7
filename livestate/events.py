"""Inputs of the session: frozen attrs classes, each stamped with ``at``.

``at`` is monotonic seconds given by the caller; the session never reads a clock. Transport events may name
the ``connection`` they come from (the number carried by ``OpenConnection`` / ``ReconnectWithHandle``); an
event from a superseded connection is ignored. ``None`` means "the current connection".
"""

from __future__ import annotations

import enum

import attrs

from livestate import wire

__all__ = [
    "CloseRequested",
    "Connect",
    "ConnectionClosed",
    "ConnectionOpened",
    "DiscardRequested",
    "Event",
    "MessageReceived",
    "SendRequested",
    "Timer",
    "TimerFired",
    "TransportFailed",
]


class Timer(enum.Enum):
    """The timers a session asks its transport to run."""

    #: No ``setupComplete`` in time: the attempt failed.
    SETUP = "setup"
    #: The ``goAway`` deadline minus the margin: reconnect now even if the turn is not over.
    GO_AWAY = "go_away"
    #: The wait before the next reconnect attempt.
    BACKOFF = "backoff"
    #: The connection proved healthy: the per-outage attempt count resets.
    HEALTHY = "healthy"
    #: A fresh session holds the unconsumed input for the application's re-seed; at this deadline it goes out.
    RESEED = "reseed"


@attrs.frozen(kw_only=True)
class Connect:
    """The application starts the session."""

    at: float


@attrs.frozen(kw_only=True)
class ConnectionOpened:
    """The transport opened a connection and sent its setup (informational)."""

    at: float
    connection: int | None = None


@attrs.frozen(kw_only=True)
class MessageReceived:
    """A decoded server message arrived."""

    at: float
    message: wire.ServerMessage
    connection: int | None = None


@attrs.frozen(kw_only=True)
class SendRequested:
    """The application wants a client message delivered (``setup`` is the session's own business)."""

    at: float
    message: wire.ClientMessage


@attrs.frozen(kw_only=True)
class ConnectionClosed:
    """A connection ended. Transports report 1006 when no close frame arrived."""

    at: float
    code: int
    reason: str = ""
    connection: int | None = None


@attrs.frozen(kw_only=True)
class TimerFired:
    """A timer the session started (``StartTimer``) reached its deadline."""

    at: float
    timer: Timer


@attrs.frozen(kw_only=True)
class CloseRequested:
    """The application ends the session."""

    at: float


@attrs.frozen(kw_only=True)
class DiscardRequested:
    """The application gives up the input a fresh session holds for its re-seed: it is handed back."""

    at: float


@attrs.frozen(kw_only=True)
class TransportFailed:
    """The transport hit an error no reconnect can fix (a bad URL, HTTP 401/403/404 at the handshake, a
    sending task that crashed): the session fails with ``reason``."""

    at: float
    reason: str
    connection: int | None = None


Event = (
    Connect
    | ConnectionOpened
    | MessageReceived
    | SendRequested
    | ConnectionClosed
    | TimerFired
    | CloseRequested
    | DiscardRequested
    | TransportFailed
)
