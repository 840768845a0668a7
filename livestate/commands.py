"""Outputs of the session: what the transport must do, in order, and what the application is told.

Carry out every returned command, in the order given. Notices (``StateChanged``, ``Resumed``,
``ToolCallsOrphaned``, ``TurnAborted``, ``MessagesDropped``, ``MessagesUnconfirmed``, ``SessionFailed``,
``FrameRejected``) change nothing on the wire: hand them to the application.

Every client message the application hands over ends in exactly one of two ways: confirmed (consumed by
index, or covered by a handle: ``TrimToIndex`` / ``TrimSeqs``), or handed back by ``MessagesDropped`` (never
delivered) or ``MessagesUnconfirmed`` (sent, but never proven consumed). The core names them by ``seq``; the
transport, which holds the payloads, fills in ``messages`` (``ReplayBuffer.apply(DropBuffered(...))`` returns
them).
"""

from __future__ import annotations

import attrs

from livestate import wire
from livestate.events import Timer
from livestate.machine import SessionState

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
class TrimToIndex:
    """Forget every buffered message with a seq up to and including ``seq``: the server has it."""

    seq: int


@attrs.frozen(kw_only=True)
class TrimSeqs:
    """Forget exactly the buffered messages ``seqs``: the server has them. (Emitted instead of
    ``TrimToIndex`` when the confirmed messages are not the oldest seqs, after a re-seed reordered the wire.)"""

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


@attrs.frozen(kw_only=True)
class StateChanged:
    """Notice: the session moved from ``old`` to ``new``."""

    old: SessionState
    new: SessionState


@attrs.frozen(kw_only=True)
class Resumed:
    """Notice: a reconnect succeeded. ``state_restored=False`` means a fresh session: re-seed the history."""

    state_restored: bool
    #: How many buffered client messages are being replayed into the new connection.
    replayed: int
    #: A fresh session with ``reseed_history``: how many unconsumed messages wait for the application's
    #: re-seed (its ``clientContent`` with ``turnComplete``) or ``reseed_timeout``, then go out.
    held: int = 0


@attrs.frozen(kw_only=True)
class ToolCallsOrphaned:
    """Notice: these calls came after the handle the session resumed from; the server no longer knows them."""

    ids: tuple[str, ...]


@attrs.frozen(kw_only=True)
class TurnAborted:
    """Notice: a reconnect cut the model's turn; no ``turnComplete`` will come for it."""


def _messages_repr(messages: tuple[tuple[int, wire.ClientMessage], ...]) -> str:
    return f"<{len(messages)} messages>"


@attrs.frozen(kw_only=True)
class MessagesDropped:
    """Notice: these client messages were never delivered (and will not be): handed back for ``reason``.

    ``seqs`` names them; ``messages`` holds ``(seq, message)`` pairs once a transport filled them in."""

    count: int
    reason: str
    seqs: tuple[int, ...] = ()
    messages: tuple[tuple[int, wire.ClientMessage], ...] = attrs.field(default=(), repr=_messages_repr)


@attrs.frozen(kw_only=True)
class MessagesUnconfirmed:
    """Notice: these client messages went out but were never proven consumed (no index or handle covers
    them), and the session can no longer replay them: handed back for ``reason``. The server may have them."""

    count: int
    reason: str
    seqs: tuple[int, ...] = ()
    messages: tuple[tuple[int, wire.ClientMessage], ...] = attrs.field(default=(), repr=_messages_repr)


@attrs.frozen(kw_only=True)
class SessionFailed:
    """Notice: the session is FAILED and will not reconnect.

    ``seqs`` / ``messages`` are every client message that was not confirmed (the same ones the
    ``MessagesDropped`` / ``MessagesUnconfirmed`` notices just before it hand back)."""

    reason: str
    seqs: tuple[int, ...] = ()
    messages: tuple[tuple[int, wire.ClientMessage], ...] = attrs.field(default=(), repr=_messages_repr)


@attrs.frozen(kw_only=True)
class FrameRejected:
    """Notice: a server frame was malformed or impossible (``error`` says which wire field); the session
    ignored it and is unchanged. Server frames are never client messages: nothing the application sent is
    affected."""

    error: str


@attrs.frozen(kw_only=True)
class RecorderFailed:
    """Notice (from drivers): the session's recorder (journal) raised ``error``; the event was applied without
    it, and the session carries on unrecorded. Nothing the application sent is affected."""

    error: str


Notice = (
    StateChanged
    | Resumed
    | ToolCallsOrphaned
    | TurnAborted
    | MessagesDropped
    | MessagesUnconfirmed
    | SessionFailed
    | FrameRejected
    | RecorderFailed
)
Command = (
    OpenConnection
    | ReconnectWithHandle
    | SendMessage
    | BufferMessage
    | TrimToIndex
    | TrimSeqs
    | DropBuffered
    | ReplayBuffered
    | StartTimer
    | CancelTimer
    | CloseConnection
    | Notice
)
