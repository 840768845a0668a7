"""The exceptions livestate raises.

``LiveStateError`` is the root. ``ProtocolError`` blames the peer (a malformed frame or impossible server
behaviour); ``UsageError`` blames the caller (an API used in a state that does not allow it). Every error
leaves the object that raised it exactly as it was before the call.
"""

from __future__ import annotations

__all__ = [
    "BufferFull",
    "LiveStateError",
    "ProtocolError",
    "RecordingError",
    "SessionFailedError",
    "UsageError",
]


class LiveStateError(Exception):
    """Base class of every error livestate raises on purpose."""


class ProtocolError(LiveStateError):
    """The server sent something livestate cannot accept.

    The message names the offending wire field by its camelCase path, for example
    ``sessionResumptionUpdate.lastConsumedClientMessageIndex: expected an int64, got 'abc'``.
    The session that raised it is unchanged.
    """


class UsageError(LiveStateError):
    """The caller asked for something the current state or configuration does not allow."""


class BufferFull(LiveStateError):
    """The replay buffer has no room for another message (``SessionConfig.max_buffer_messages`` or
    ``max_buffer_bytes``). The session is unchanged; the message was not accepted. The async drivers wait for
    room instead of raising; ``SessionConfig.drop_oldest_when_full`` opts into evicting the oldest instead."""


class RecordingError(LiveStateError):
    """The session's recorder (a journal) failed on an event. The event was not applied: the session is
    exactly as it was before the call, and the recorder's own exception is the ``__cause__``."""


class SessionFailedError(LiveStateError):
    """The session is FAILED and will not reconnect.

    ``reason`` says why (a close code and reason, the server's error status and message, a spent budget);
    ``messages`` are the client messages that were never confirmed, as ``(seq, message)`` pairs, handed back
    so the application can send them elsewhere.
    """

    def __init__(self, reason: str, messages: tuple[tuple[int, object], ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.messages = messages
