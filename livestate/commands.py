"""Outputs of the session: what the transport must do, in order, and what the application is told.

Carry out every returned command, in the order given. Notices (``StateChanged``, ``Resumed``,
``ToolCallsOrphaned``, ``TurnAborted``, ``MessagesDropped``, ``MessagesUnconfirmed``, ``SessionFailed``, and
from drivers ``FrameRejected``, ``RecorderFailed``) change nothing on the wire: hand them to the application.
They live in :mod:`livestate.notices` and are importable from here too (the same classes).

Every client message the application hands over ends in exactly one of two ways: confirmed (consumed by
index, or covered by a handle: ``TrimThrough`` / ``TrimSeqs``), or handed back by ``MessagesDropped`` (never
delivered) or ``MessagesUnconfirmed`` (sent, but never proven consumed). The core names them by ``seq``; the
transport, which holds the payloads, fills in ``messages`` (``ReplayBuffer.apply(DropBuffered(...))`` returns
them).
"""

from __future__ import annotations

import attrs

from livestate import wire
from livestate.events import Timer
from livestate.notices import (
    FrameRejected,
    MessagesDropped,
    MessagesUnconfirmed,
    Notice,
    RecorderFailed,
    Resumed,
    SessionFailed,
    StateChanged,
    ToolCallsOrphaned,
    TurnAborted,
)

__all__ = [
    "BufferMessage",
    "CancelTimer",
    "CloseConnection",
    "Command",
    "DropBuffered",
    "FrameRejected",
    "MessagesDropped",
    "MessagesUnconfirmed",
    "Notice",
    "OpenConnection",
    "ReconnectWithHandle",
    "RecorderFailed",
    "ReplayBuffered",
    "Resumed",
    "SendMessage",
    "SessionFailed",
    "StartTimer",
    "StateChanged",
    "ToolCallsOrphaned",
    "TrimSeqs",
    "TrimThrough",
    "TrimToIndex",
    "TurnAborted",
]


@attrs.frozen(kw_only=True)
class OpenConnection:
    """Open a new connection and send ``setup`` (a fresh session) as its first message."""

    setup: wire.Setup
    #: 1 for the first attempt of an outage (or of the session), then 2, 3 …
    attempt: int
    #: The number of this connection; report it on the events it produces.
    connection: int


@attrs.frozen(kw_only=True)
class ReconnectWithHandle:
    """Open a new connection and send ``setup``, which already carries ``handle``, to resume the session."""

    handle: str = attrs.field(repr=False)
    setup: wire.Setup
    attempt: int
    connection: int


@attrs.frozen(kw_only=True)
class SendMessage:
    """Send ``message`` on the current connection."""

    message: wire.ClientMessage
    seq: int


@attrs.frozen(kw_only=True)
class BufferMessage:
    """Keep ``message`` under ``seq`` until it is trimmed, replayed or dropped."""

    seq: int
    message: wire.ClientMessage


@attrs.frozen(kw_only=True)
class TrimThrough:
    """Forget every buffered message with a seq up to and including ``seq``: the server has them.

    ``seq`` is livestate's own number, never a wire index (the session maps the index it came from). The old
    name ``TrimToIndex`` is this same class."""

    seq: int


#: The old name of :class:`TrimThrough` (it carries a seq, not a wire index), kept as the same class:
#: ``isinstance``, ``match`` and equality work with either name.
TrimToIndex = TrimThrough


@attrs.frozen(kw_only=True)
class TrimSeqs:
    """Forget exactly the buffered messages ``seqs``: the server has them. (Emitted instead of
    ``TrimThrough`` when the confirmed messages are not the oldest seqs, after a re-seed reordered the wire.)"""

    seqs: tuple[int, ...]


@attrs.frozen(kw_only=True)
class DropBuffered:
    """Forget the buffered messages ``seqs`` without sending them again; the notice that follows hands them
    back to the application."""

    seqs: tuple[int, ...]


@attrs.frozen(kw_only=True)
class ReplayBuffered:
    """Send every buffered message with ``first_seq <= seq <= last_seq``, in seq order, before anything new."""

    first_seq: int
    last_seq: int


@attrs.frozen(kw_only=True)
class StartTimer:
    """Arm ``timer`` (replacing an armed one) to fire ``TimerFired`` at ``deadline`` (same clock as ``at``)."""

    timer: Timer
    deadline: float


@attrs.frozen(kw_only=True)
class CancelTimer:
    """Disarm ``timer`` if it is armed."""

    timer: Timer


@attrs.frozen(kw_only=True)
class CloseConnection:
    """Close the current connection with this code and reason; its later events will be ignored."""

    code: int
    reason: str


#: Any command the session returns, notices included: a union, for ``isinstance`` and annotations.
Command = (
    OpenConnection
    | ReconnectWithHandle
    | SendMessage
    | BufferMessage
    | TrimThrough
    | TrimSeqs
    | DropBuffered
    | ReplayBuffered
    | StartTimer
    | CancelTimer
    | CloseConnection
    | Notice
)
