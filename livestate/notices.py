"""Notices: what the session (or a driver) tells the application. They change nothing on the wire.

Hand every notice to the application. ``livestate.commands`` re-exports each of them (the same classes), and
``commands.Command`` includes :data:`Notice`, so a transport that carries out commands meets them in the same
stream, in order.
"""

from __future__ import annotations

import attrs

from livestate import wire
from livestate.machine import SessionState

__all__ = [
    "FrameRejected",
    "MessagesDropped",
    "MessagesUnconfirmed",
    "Notice",
    "RecorderFailed",
    "Resumed",
    "SessionFailed",
    "StateChanged",
    "ToolCallsOrphaned",
    "TurnAborted",
]


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


#: Any notice: a union of the classes above, for ``isinstance`` and annotations.
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
