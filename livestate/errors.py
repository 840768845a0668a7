"""The exceptions livestate raises.

``LiveStateError`` is the root. ``ProtocolError`` blames the peer (a malformed frame or impossible server
behaviour); ``UsageError`` blames the caller (an API used in a state that does not allow it). Every error
leaves the object that raised it exactly as it was before the call.
"""

from __future__ import annotations

__all__ = ["LiveStateError", "ProtocolError", "UsageError"]


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
