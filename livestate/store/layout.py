"""How a session lies in a store, so that a write costs what changed and not what the session holds.

Three kinds of record per session:

- the **config** (``SessionConfig`` as JSON): written once, when the session is first stored;
- the **head**: the snapshot without its config and without its window of unconfirmed messages (about 300
  bytes, the handle among them), rewritten in the same atomic write as any change;
- one **message record** per unconfirmed client message: its wire frame and its **entry** (the facts about it
  a restore needs: its size for the buffer limit and, for a tool response, the calls it answers), written
  once, before the message goes on the wire, and deleted when the server confirms it.

So a client message costs one message record and one head, however many messages wait unconfirmed. The head
names the window's order only while it differs from seq order (a re-seed goes out ahead of held input).

What the stored form leaves out: when each message went out on the connection the crashed process held.
The next process reports that connection lost as soon as it resumes (``Session.resume``), which marks every
unconfirmed message unsent anyway; a loaded snapshot therefore has them all unsent. Whether a message ever
went out is kept (the head lists the few that never did), so a message handed back later is still called
"dropped" or "unconfirmed" rightly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from cattrs.gen import make_dict_unstructure_fn, override

from livestate import wire
from livestate._records import CONVERTER, describe_problem
from livestate.buffer import ReplayBuffer
from livestate.journal import fingerprint
from livestate.policy import SessionConfig
from livestate.record import SessionSnapshot
from livestate.store.base import (
    Append,
    Lease,
    Op,
    StoredSession,
    StoreError,
    decode_frame,
    encode_frame,
)
from livestate.window import Unconsumed
from livestate.wire import jsonio

__all__ = [
    "Head",
    "MessageRecord",
    "Write",
    "assemble",
    "encode_config",
    "encode_entry",
    "encode_head",
    "write_of",
]

_unstructure_head = make_dict_unstructure_fn(
    SessionSnapshot, CONVERTER, config=override(omit=True), unconsumed=override(omit=True)
)


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def encode_config(config: SessionConfig) -> str:
    """The config record."""
    return _dumps(CONVERTER.unstructure(config, SessionConfig))


def encode_head(
    snapshot: SessionSnapshot, order: Sequence[int] | None = None, untransmitted: Sequence[int] = ()
) -> str:
    """The head record; ``order``: the window's seqs in wire order, only when that is not seq order;
    ``untransmitted``: the seqs that never went out on any connection."""
    times = [snapshot.last_at, *(deadline for _, deadline in snapshot.timers)]
    if snapshot.connection_ended_at is not None:
        times.append(snapshot.connection_ended_at)
    if not all(map(math.isfinite, times)):  # orjson would write null where the reader wants a number
        raise StoreError("a session time is not a finite number: the head cannot be stored")
    head = _unstructure_head(snapshot)
    if order is not None:
        head["order"] = list(order)
    if untransmitted:
        head["untransmitted"] = list(untransmitted)
    return jsonio.dumps(head)


def untransmitted_seqs(snapshot: SessionSnapshot) -> list[int]:
    """The seqs of the window that never went out: among the unsent ones, which come last."""
    window = snapshot.unconsumed
    found = []
    for position in range(len(window) - 1, -1, -1):
        entry = window[position]
        if entry.sent_at is not None:
            break
        if not entry.transmitted:
            found.append(entry.seq)
    return found[::-1]


def encode_entry(entry: Unconsumed) -> str:
    """A message record's entry: ``[size]``, or ``[size, calls_generation, [call ids]]`` for an answer."""
    if entry.calls_generation is None and not entry.call_ids:
        return f"[{entry.size}]"
    return _dumps([entry.size, entry.calls_generation, list(entry.call_ids)])


@attrs.frozen(kw_only=True)
class Head:
    """A head record, with what a store keeps beside it for lists and expiry."""

    text: str = attrs.field(repr=False)  # it holds the handle
    state: str
    handle_fingerprint: str | None
    handle_ttl: float
    #: Wall-clock time (``time.time()``) of the snapshot the head was taken from.
    saved_at: float


@attrs.frozen(kw_only=True)
class Write:
    """One session's changes in one flush, applied atomically: the operations in order, then the head (and,
    the first time, the config). A store refuses it whole (``LeaseLost``) when ``lease`` is stale."""

    lease: Lease
    ops: tuple[Op, ...] = ()
    head: Head | None = None
    config: str | None = None


def head_of(
    snapshot: SessionSnapshot,
    saved_at: float,
    order: Sequence[int] | None = None,
    fingerprint_of: Callable[[str], str] = fingerprint,
) -> Head:
    """The head record of ``snapshot`` taken at wall-clock ``saved_at`` (``order`` as for ``encode_head``;
    ``fingerprint_of`` may remember the last handle's fingerprint)."""
    return Head(
        text=encode_head(snapshot, order, untransmitted_seqs(snapshot)),
        state=snapshot.state.name,
        handle_fingerprint=None if snapshot.handle is None else fingerprint_of(snapshot.handle),
        handle_ttl=snapshot.config.handle_ttl,
        saved_at=saved_at,
    )


def write_of(lease: Lease, ops: Sequence[Op], snapshot: SessionSnapshot | None, saved_at: float) -> Write:
    """A :class:`Write` of ``ops`` and (if given) ``snapshot``, config included, the entries of appended
    messages taken from the snapshot's window: what ``SessionStore.write`` stores."""
    if snapshot is None:
        return Write(lease=lease, ops=tuple(ops))
    window = {u.seq: u for u in snapshot.unconsumed}
    seqs = [u.seq for u in snapshot.unconsumed]
    filled = tuple(
        attrs.evolve(op, entry=encode_entry(window[op.seq]))
        if type(op) is Append and op.entry is None and op.seq in window
        else op
        for op in ops
    )
    return Write(
        lease=lease,
        ops=filled,
        head=head_of(snapshot, saved_at, None if seqs == sorted(seqs) else seqs),
        config=encode_config(snapshot.config),
    )


def append_of(seq: int, message: wire.ClientMessage, entry: Unconsumed | None) -> Append:
    """The write-ahead of one message."""
    return Append(seq=seq, frame=encode_frame(message), entry=None if entry is None else encode_entry(entry))


@attrs.frozen
class MessageRecord:
    """One stored message record, checksum already verified by the store: seq, wire frame, entry."""

    seq: int
    frame: str
    entry: str


def _entry(session_id: str, seq: int, text: str, transmitted: bool) -> dict[str, Any]:
    try:
        value = json.loads(text)
        if not isinstance(value, list) or len(value) not in (1, 3):
            raise ValueError("not a list of one or three values")
        size, generation, call_ids = value if len(value) == 3 else (value[0], None, [])
        if type(size) is not int or size < 0:
            raise ValueError("size")
        if generation is not None and type(generation) is not int:
            raise ValueError("calls generation")
        if not isinstance(call_ids, list) or not all(type(i) is str for i in call_ids):
            raise ValueError("call ids")
    except (ValueError, TypeError) as exc:
        raise StoreError(f"session {session_id!r}: message seq {seq}'s entry is corrupt ({exc})") from None
    return {
        "seq": seq,
        "sent_at": None,
        "size": size,
        "calls_generation": generation,
        "call_ids": call_ids,
        "transmitted": transmitted,
    }


def _json_object(session_id: str, what: str, text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise StoreError(f"session {session_id!r}: the {what} record is corrupt: it is not a JSON object")
    return value


def _problem(exc: BaseException, type_: Any) -> str:
    """cattrs' description of what does not fit, never quoting a value (the head holds the handle)."""
    text = describe_problem(exc, type_)
    return "it does not decode" if "handle" in text.lower() or len(text) > 300 else text


def assemble(
    session_id: str, config_text: str, head_text: str, saved_at: float, records: Sequence[MessageRecord]
) -> StoredSession:
    """The stored session from its records, checked: ``StoreError`` naming the session and what is wrong if a
    record does not decode or the messages do not match the head (a missing or extra message, a size that
    does not add up, an order that is not the stored seqs). A wrong buffer is never returned."""
    where = f"session {session_id!r}"
    config_value = _json_object(session_id, "config", config_text)
    head = _json_object(session_id, "head", head_text)
    order = head.pop("order", None)
    by_seq = {record.seq: record for record in records}
    seqs = sorted(by_seq)
    if order is None:
        order = seqs
    elif (
        not isinstance(order, list)
        or sorted(o for o in order if type(o) is int) != seqs
        or len(order) != len(seqs)
    ):
        raise StoreError(f"{where}: the head's window order does not match the stored messages")
    last = head.get("seq")
    if type(last) is not int:
        raise StoreError(f"{where}: the head record is corrupt: seq is not an integer")
    if seqs and seqs[-1] > last:
        raise StoreError(
            f"{where}: the buffer holds seq {seqs[-1]} past the head's last seq {last}: "
            "refusing to resume with a wrong buffer"
        )
    untransmitted = head.pop("untransmitted", [])
    if not isinstance(untransmitted, list) or not all(type(u) is int and u in by_seq for u in untransmitted):
        raise StoreError(f"{where}: the head's untransmitted seqs do not match the stored messages")
    entries = [_entry(session_id, seq, by_seq[seq].entry, seq not in untransmitted) for seq in order]
    if sum(e["size"] for e in entries) != head.get("buffered_bytes"):
        raise StoreError(
            f"{where}: the stored messages ({len(entries)}) do not add up to the head's buffered bytes: "
            "a message record is missing or extra; refusing to resume with a wrong buffer"
        )
    try:
        config = CONVERTER.structure(config_value, SessionConfig)
    except Exception as exc:
        raise StoreError(f"{where}: the config record is corrupt: {_problem(exc, SessionConfig)}") from None
    head["config"] = CONVERTER.unstructure(config, SessionConfig)
    head["unconsumed"] = entries
    try:
        snapshot = CONVERTER.structure(head, SessionSnapshot)
    except Exception as exc:
        raise StoreError(f"{where}: the head record is corrupt: {_problem(exc, SessionSnapshot)}") from None
    items: list[tuple[int, wire.ClientMessage]] = [
        (seq, decode_frame(session_id, seq, by_seq[seq].frame)) for seq in seqs
    ]
    return StoredSession(snapshot=snapshot, buffer=ReplayBuffer.from_items(items), saved_at=saved_at)
