"""What every session store is: the ``SessionStore`` protocol, its records, its errors, and the record codec.

A store keeps, per session id: the session snapshot (``Session.snapshot()``, handle included), the client
messages the server has not confirmed (by seq, written *before* they go on the wire), and a lease with a
fencing token. A writer holds the lease's token; the store refuses any write whose token is not the latest
one it issued (``LeaseLost``), so a worker that lost its lease can never overwrite its successor's state.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from livestate import wire
from livestate.buffer import ReplayBuffer
from livestate.errors import LiveStateError, UsageError

if TYPE_CHECKING:
    from livestate.store.layout import Write
from livestate.journal import fingerprint
from livestate.record import SessionSnapshot

__all__ = [
    "Append",
    "Drop",
    "Lease",
    "LeaseLost",
    "Op",
    "SessionInfo",
    "SessionLeased",
    "SessionStore",
    "StoreError",
    "StoredSession",
    "Trim",
    "decode_frame",
    "default_owner",
    "encode_frame",
]


class StoreError(LiveStateError):
    """A store record is missing, truncated, corrupt or inconsistent; the message names the session and
    what is wrong. A session whose records raise this is never resumed."""


class SessionLeased(StoreError):
    """Another live worker holds the session's lease: it carries the session on; this worker must not."""

    def __init__(self, session_id: str, owner: str, expires_in: float) -> None:
        super().__init__(f"session {session_id!r} is leased by {owner!r} for another {expires_in:.2f} s")
        self.session_id = session_id
        self.owner = owner
        self.expires_in = expires_in


class LeaseLost(StoreError):
    """A write or renewal with a fencing token that is no longer the session's latest: another worker took
    the session over. The store refused the write; this worker must stop carrying the session."""


@attrs.frozen(kw_only=True)
class Lease:
    """A held lease: the right to write one session's records while ``token`` is its latest token."""

    session_id: str
    #: Who holds it (``host:pid:random``).
    owner: str
    #: The fencing token: grows by one with every acquisition; a write with an older one is refused.
    token: int
    #: Lease lifetime in seconds; renew well before it lapses.
    ttl: float


@attrs.frozen(kw_only=True)
class Append:
    """Write-ahead: a client message, kept under ``seq`` until trimmed."""

    seq: int
    #: The message as its JSON wire frame (``encode_frame``).
    frame: str
    #: Its window entry (``layout.encode_entry``: size, answered calls); ``SessionStore.write`` fills it in
    #: from the snapshot written with it.
    entry: str | None = None


@attrs.frozen(kw_only=True)
class Trim:
    """Forget every message with a seq up to ``seq`` (the server confirmed them)."""

    seq: int


@attrs.frozen(kw_only=True)
class Drop:
    """Forget these seqs (confirmed by a handle, or handed back to the application)."""

    seqs: tuple[int, ...]


Op = Append | Trim | Drop


@attrs.frozen(kw_only=True)
class SessionInfo:
    """What ``list_sessions`` shows: never the handle, only its fingerprint."""

    session_id: str
    #: The session's state name when last saved (``None`` before the first snapshot).
    state: str | None
    #: ``sha256:…`` of the stored handle, or ``None``.
    handle_fingerprint: str | None
    #: Wall-clock time (``time.time()``) of the last snapshot and of the last handle change.
    saved_at: float | None
    handle_at: float | None
    #: Unconfirmed messages stored.
    messages: int
    #: The current lease holder and its remaining seconds (``None`` when nobody holds it).
    owner: str | None
    lease_left: float | None


@attrs.frozen(kw_only=True)
class StoredSession:
    """A session as the store holds it, checked: snapshot and buffer agree."""

    snapshot: SessionSnapshot
    buffer: ReplayBuffer = attrs.field(eq=False)
    #: Wall-clock time of the snapshot: the new process passes ``now - saved_at`` as ``restored_after``.
    saved_at: float


#: Seconds at least between the starts of two batches of writes to one store (group commit): under load
#: every session that changed meanwhile shares the next commit or round trip, at the cost of its messages
#: waiting up to this long more before they go on the wire; a write after a quiet spell starts at once.
DEFAULT_BATCH_WINDOW = 0.005


def check_batch_window(seconds: float) -> float:
    """``seconds`` as a store's ``batch_window``; ``UsageError`` unless between 0 and 1."""
    if type(seconds) not in (int, float) or not 0 <= seconds <= 1:
        raise UsageError(f"batch_window must be between 0 and 1 second, got {seconds!r}")
    return float(seconds)


@runtime_checkable
class SessionStore(Protocol):
    """Where sessions outlive their process. Every method is a coroutine; writes take the writer's lease and
    are refused with ``LeaseLost`` when its token is stale."""

    #: The least time in seconds between two batches' starts (see ``DEFAULT_BATCH_WINDOW``).
    batch_window: float

    async def acquire(self, session_id: str, owner: str, ttl: float) -> Lease:
        """Take the session's lease (a new fencing token), or raise ``SessionLeased``."""
        ...

    async def renew(self, lease: Lease) -> None:
        """Extend the lease by its ttl; ``LeaseLost`` if another worker took it over."""
        ...

    async def release(self, lease: Lease) -> None:
        """Give the lease up (nothing happens when it was already taken over)."""
        ...

    async def write(
        self, lease: Lease, ops: Sequence[Op], snapshot: SessionSnapshot | None, *, saved_at: float
    ) -> None:
        """Atomically apply ``ops`` in order, then store ``snapshot`` (if given); ``LeaseLost`` if stale."""
        ...

    async def write_batch(self, writes: Sequence[Write]) -> list[StoreError | None]:
        """Apply several sessions' writes together (one transaction or one round trip): for each, ``None``
        once applied, or why that write alone was refused: ``LeaseLost`` (a stale token) or another
        ``StoreError`` (the others still apply). A failure of the whole batch raises."""
        ...

    async def load(self, session_id: str) -> StoredSession | None:
        """The session's snapshot and unconfirmed messages (``None`` when it has no snapshot yet);
        ``StoreError`` naming the session if a record is corrupt or the buffer does not match."""
        ...

    async def stamp(self, session_id: str) -> str | None:
        """A text that changes with every write of the session's head (``None`` when it has none): a
        session read before its lease was taken is still current if its stamp has not changed."""
        ...

    async def unconfirmed(self, session_id: str) -> list[tuple[int, wire.ClientMessage]]:
        """The stored unconfirmed messages, oldest first."""
        ...

    async def list_sessions(self) -> list[SessionInfo]:
        """Every stored session, by id."""
        ...

    async def delete(self, session_id: str) -> bool:
        """Forget a session and its messages and lease; whether it existed."""
        ...

    async def expire(self, now: float | None = None) -> list[str]:
        """Delete every session whose handle (or, lacking one, last snapshot) is older than its config's
        ``handle_ttl``, and no lease holds; return their ids."""
        ...

    async def close(self) -> None:
        """Release connections and files."""
        ...


def default_owner() -> str:
    """``host:pid:random``: names a worker in leases."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def encode_frame(message: wire.ClientMessage) -> str:
    """A client message as its JSON wire frame."""
    return wire.encode(message)


def checksum(text: str) -> str:
    """A short digest stored beside a record, so truncation or tampering is caught on load."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def decode_frame(session_id: str, seq: int, text: str) -> wire.ClientMessage:
    """The inverse of :func:`encode_frame`; ``StoreError`` naming the session and seq if it is corrupt."""
    try:
        message = wire.decode_client(text)
    except Exception as exc:
        raise StoreError(f"session {session_id!r}: message seq {seq} is corrupt: {exc}") from None
    return message


def handle_fingerprint(snapshot: SessionSnapshot) -> str | None:
    """The snapshot's handle as a fingerprint (what lists show), or ``None``."""
    return None if snapshot.handle is None else fingerprint(snapshot.handle)


def dumps(value: Any) -> str:
    """Compact JSON."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
