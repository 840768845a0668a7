"""Outputs of the session: what the transport must do, in order, and what the application is told.

Carry out every returned command, in the order given. Notices (``StateChanged``, ``Resumed``,
``ToolCallsOrphaned``, ``TurnAborted``, ``MessagesDropped``, ``SessionFailed``) change nothing on the wire:
hand them to the application.
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
    "MessagesDropped",
    "Notice",
    "OpenConnection",
    "ReconnectWithHandle",
    "ReplayBuffered",
    "Resumed",
    "SendMessage",
    "SessionFailed",
    "StartTimer",
    "StateChanged",
    "ToolCallsOrphaned",
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
class DropBuffered:
    """Forget the buffered messages ``seqs`` without sending them (a notice says why)."""

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


@attrs.frozen(kw_only=True)
class ToolCallsOrphaned:
    """Notice: these calls came after the handle the session resumed from; the server no longer knows them."""

    ids: tuple[str, ...]


@attrs.frozen(kw_only=True)
class TurnAborted:
    """Notice: a reconnect cut the model's turn; no ``turnComplete`` will come for it."""


@attrs.frozen(kw_only=True)
class MessagesDropped:
    """Notice: ``count`` messages were not delivered (or not confirmed delivered), for ``reason``."""

    count: int
    reason: str


@attrs.frozen(kw_only=True)
class SessionFailed:
    """Notice: the session is FAILED and will not reconnect."""

    reason: str


Notice = StateChanged | Resumed | ToolCallsOrphaned | TurnAborted | MessagesDropped | SessionFailed
Command = (
    OpenConnection
    | ReconnectWithHandle
    | SendMessage
    | BufferMessage
    | TrimToIndex
    | DropBuffered
    | ReplayBuffered
    | StartTimer
    | CancelTimer
    | CloseConnection
    | Notice
)
