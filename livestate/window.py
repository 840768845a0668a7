"""The replay window: client messages the server has not confirmed, in wire order, and what to do with them.

Pure helpers over the session's list of :class:`Unconsumed` entries. The list is in wire order: first the
messages sent on the current connection (wire indexes ``first_index``, ``first_index + 1`` …), then those
waiting to go out. The helpers return data (counts, seqs, runs) and never emit commands; only ``Session``
turns results into commands (``TrimThrough``, ``TrimSeqs``, ``ReplayBuffered``, ``DropBuffered``) and notices.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from livestate import wire
from livestate.errors import BufferFull, ProtocolError, UsageError
from livestate.policy import SessionConfig

__all__ = [
    "Unconsumed",
    "admit",
    "approximate_size",
    "checked_size",
    "evict_count",
    "is_full",
    "mark_sent",
    "replay_runs",
    "sent_count",
    "trim",
]


@attrs.frozen
class Unconsumed:
    """A client message the server has not confirmed: buffered by the transport under ``seq``."""

    seq: int
    #: When it went out on the current connection (``None``: not sent on it, waiting to be replayed).
    sent_at: float | None
    #: Approximate size in bytes, for the buffer limit.
    size: int
    #: For a toolResponse: the handle generation of the oldest call it answers (``None`` otherwise).
    calls_generation: int | None = None
    call_ids: tuple[str, ...] = ()
    #: Whether it ever went out on any connection: if it is handed back, "unconfirmed" rather than "dropped".
    transmitted: bool = False


def sent_count(entries: list[Unconsumed]) -> int:
    """How many entries went out on this connection (they come first in the list)."""
    if not entries or entries[-1].sent_at is not None:
        return len(entries)
    for position, u in enumerate(entries):
        if u.sent_at is None:
            return position
    return len(entries)  # pragma: no cover - the last one is unsent


def mark_sent(entries: list[Unconsumed], start: int, at: float) -> list[Unconsumed]:
    """Mark ``entries[start:]`` as sent at ``at`` (in place); return them."""
    sent = [attrs.evolve(u, sent_at=at, transmitted=True) for u in entries[start:]]
    entries[start:] = sent
    return sent


def replay_runs(entries: list[Unconsumed], replayed: list[Unconsumed]) -> list[tuple[int, int]]:
    """``(first_seq, last_seq)`` ranges that send exactly ``replayed``, in their order, from a buffer holding
    ``entries``: one range per run of seqs that are adjacent among the buffered seqs (a single range unless
    a re-seed reordered the wire)."""
    rank = {seq: n for n, seq in enumerate(sorted(u.seq for u in entries))}
    runs = []
    first = last = replayed[0].seq
    for u in replayed[1:]:
        if rank[u.seq] != rank[last] + 1:
            runs.append((first, last))
            first = u.seq
        last = u.seq
    runs.append((first, last))
    return runs


def trim(
    entries: list[Unconsumed], first_index: int, consumed: Callable[[int, Unconsumed], bool]
) -> list[Unconsumed]:
    """Remove (in place) and return the leading entries ``consumed(wire_index, entry)`` says the server has."""
    count = 0
    while count < len(entries) and consumed(first_index + count, entries[count]):
        count += 1
    trimmed = entries[:count]
    del entries[:count]
    return trimmed


def evict_count(
    entries: list[Unconsumed], buffered_bytes: int, size: int, max_messages: int, max_bytes: int
) -> int:
    """``drop_oldest_when_full``: how many of the oldest entries to evict to take a ``size``-byte message, a
    tenth of the buffer at a time (so a flood brings one notice per tenth, not one per message)."""
    keep_messages = max_messages - max(1, max_messages // 10)
    keep_bytes = max_bytes - max_bytes // 10
    count, freed = 0, 0
    while count < len(entries) and (
        len(entries) - count > keep_messages or buffered_bytes - freed + size > keep_bytes
    ):
        freed += entries[count].size
        count += 1
    return count


def is_full(count: int, buffered_bytes: int, size: int, config: SessionConfig) -> bool:
    """Whether a buffer of ``count`` messages and ``buffered_bytes`` bytes has no room for ``size`` more."""
    return count >= config.max_buffer_messages or buffered_bytes + size > config.max_buffer_bytes


def admit(
    message: wire.ClientMessage, count: int, buffered_bytes: int, config: SessionConfig
) -> tuple[int, bool]:
    """Check a client message at the door: its size (:func:`checked_size`), and whether the buffer must evict
    the oldest to take it (``drop_oldest_when_full``). ``UsageError`` for a message that can never fit,
    ``BufferFull`` when there is no room now."""
    size = checked_size(message)
    if size > config.max_buffer_bytes:
        raise UsageError(
            f"a {size}-byte message can never fit the replay buffer "
            f"(SessionConfig.max_buffer_bytes={config.max_buffer_bytes})"
        )
    full = is_full(count, buffered_bytes, size, config)
    if full and not config.drop_oldest_when_full:
        raise BufferFull(
            f"the replay buffer is full ({count} messages, {buffered_bytes} bytes; "
            f"limits {config.max_buffer_messages} and {config.max_buffer_bytes}): wait for the server to "
            f"confirm what was sent"
        )
    return size, full


def approximate_size(message: wire.ClientMessage) -> int:
    """Bytes a buffered message costs, estimated without encoding audio (the hot path)."""
    if type(message) is wire.RealtimeInput:
        size = 64
        for blob in (message.audio, message.video):
            if blob is not None and blob.data is not None:
                size += len(blob.data)
        for chunk in message.media_chunks or ():
            size += len(chunk.data or "")
        return size + len(message.text or "")
    return len(wire.encode(message))


def checked_size(message: wire.ClientMessage) -> int:
    """:func:`approximate_size`, after proving the message encodes (and, unless it is realtime input, reads
    back): a bad one fails at the door with ``UsageError``, not later in a transport's sending task."""
    try:
        encoded = wire.encode(message)
    except Exception as exc:
        raise UsageError(
            f"{type(message).__name__} cannot be encoded: {_encode_problem(message, exc)}"
        ) from exc
    if type(message) is not wire.RealtimeInput:  # rare and free-form: prove it reads back (depth, numbers)
        try:
            wire.decode_client(encoded, max_size=len(encoded) + 1)
        except ProtocolError as exc:
            raise UsageError(f"{type(message).__name__} would not read back: {exc}") from None
    return approximate_size(message)


def _encode_problem(message: wire.ClientMessage, exc: Exception) -> str:
    if isinstance(message, wire.RealtimeInput):
        for name in ("audio", "video"):
            blob = getattr(message, name)
            if blob is not None and not isinstance(blob.data, str | None):
                return f"realtimeInput.{name}.data must be base64 text, got {type(blob.data).__name__}"
    return str(exc)
