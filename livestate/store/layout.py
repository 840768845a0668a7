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

Most writes need no head at all: a **plain send** (a message appended to the window and sent, nothing else
changed: no tool answer, no eviction, no replay) moves only a few counters (``HotFields``), and server content
only the turn flag. A write made of plain sends stores just their message records, the last one's entry
carrying those hot fields (and the wall-clock time); its messages are the **tail**, the seqs past the head's.
A load applies the last tail record's fields to the head. The tail must run on from the head's seq without a
gap, and the sizes must add up to the buffered bytes, as for any message.

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
from livestate.record import HotFields, SessionSnapshot
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
    "encode_tail_entry",
    "window_order",
    "with_entries",
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


def encode_tail_entry(size: int, hot: HotFields, saved_at: float) -> str | None:
    """The entry of a write's last message when the write has no head: its size and the session's hot fields
    after it, taken at wall-clock ``saved_at`` (``None`` if a time is not finite: write the head then, which
    says why)."""
    if not (math.isfinite(hot.last_at) and math.isfinite(saved_at)):
        return None
    return (
        f'[{size},{{"sent_index":{hot.sent_index},"first_unconsumed_index":{hot.first_unconsumed_index},'
        f'"buffered_bytes":{hot.buffered_bytes},"last_at":{hot.last_at!r},'
        f'"turn_open":{"true" if hot.turn_open else "false"},"saved_at":{saved_at!r}}}]'
    )


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
    filled, _ = with_entries(ops, snapshot)
    return Write(
        lease=lease,
        ops=tuple(filled),
        head=head_of(snapshot, saved_at, window_order(snapshot)),
        config=encode_config(snapshot.config),
    )


def with_entries(ops: Sequence[Op], snapshot: SessionSnapshot) -> tuple[list[Op], bool]:
    """``ops`` with every append's entry filled in from ``snapshot``'s window, and whether one of those
    messages went ahead of an older one (a re-seed ahead of held input: the window is out of seq order)."""
    wanted = {op.seq for op in ops if type(op) is Append and op.entry is None}
    if not wanted:
        return list(ops), False
    window = snapshot.unconsumed
    found: dict[int, str] = {}
    disordered = False
    for position in range(len(window) - 1, -1, -1):  # new messages are at the end of the window
        entry = window[position]
        if entry.seq in wanted:
            found[entry.seq] = encode_entry(entry)
            if position + 1 < len(window) and window[position + 1].seq < entry.seq:
                disordered = True
            if len(found) == len(wanted):
                break
    filled: list[Op] = [
        Append(seq=op.seq, frame=op.frame, entry=found.get(op.seq))
        if type(op) is Append and op.entry is None
        else op
        for op in ops
    ]
    return filled, disordered


def window_order(snapshot: SessionSnapshot) -> list[int] | None:
    """The window's seqs in wire order, or ``None`` when that is seq order (the head then names none)."""
    seqs = [u.seq for u in snapshot.unconsumed]
    return None if seqs == sorted(seqs) else seqs


def append_of(seq: int, message: wire.ClientMessage, entry: Unconsumed | None) -> Append:
    """The write-ahead of one message."""
    return Append(seq=seq, frame=encode_frame(message), entry=None if entry is None else encode_entry(entry))


@attrs.frozen
class MessageRecord:
    """One stored message record, checksum already verified by the store: seq, wire frame, entry."""

    seq: int
    frame: str
    entry: str


#: What a tail entry's hot fields hold, and the JSON types each may have.
_HOT = {
    "sent_index": (int,),
    "first_unconsumed_index": (int,),
    "buffered_bytes": (int,),
    "last_at": (int, float),
    "turn_open": (bool,),
    "saved_at": (int, float),
}


def _entry(
    session_id: str, seq: int, text: str, transmitted: bool
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A message's window entry and, for a tail entry, the hot fields it carries."""
    hot = None
    try:
        value = json.loads(text)
        if not isinstance(value, list) or len(value) not in (1, 2, 3):
            raise ValueError("not a list of one, two or three values")
        if len(value) == 2:
            size, hot = value
            generation, call_ids = None, []
            if not isinstance(hot, dict) or set(hot) != set(_HOT):
                raise ValueError("hot fields")
            if not all(type(hot[name]) in kinds for name, kinds in _HOT.items()):
                raise ValueError("hot field types")
        else:
            size, generation, call_ids = value if len(value) == 3 else (value[0], None, [])
        if type(size) is not int or size < 0:
            raise ValueError("size")
        if generation is not None and type(generation) is not int:
            raise ValueError("calls generation")
        if not isinstance(call_ids, list) or not all(type(i) is str for i in call_ids):
            raise ValueError("call ids")
    except (ValueError, TypeError) as exc:
        raise StoreError(f"session {session_id!r}: message seq {seq}'s entry is corrupt ({exc})") from None
    entry = {
        "seq": seq,
        "sent_at": None,
        "size": size,
        "calls_generation": generation,
        "call_ids": call_ids,
        "transmitted": transmitted,
    }
    return entry, hot


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
    does not add up, an order that is not the stored seqs, a tail that does not run on from the head). A wrong
    buffer is never returned."""
    where = f"session {session_id!r}"
    config_value = _json_object(session_id, "config", config_text)
    head = _json_object(session_id, "head", head_text)
    order = head.pop("order", None)
    by_seq = {record.seq: record for record in records}
    last = head.get("seq")
    if type(last) is not int:
        raise StoreError(f"{where}: the head record is corrupt: seq is not an integer")
    seqs = sorted(by_seq)
    tail = [seq for seq in seqs if seq > last]
    covered = seqs[: len(seqs) - len(tail)]
    if tail != list(range(last + 1, last + 1 + len(tail))):
        raise StoreError(
            f"{where}: the messages past the head's last seq {last} do not run on from it: "
            "refusing to resume with a wrong buffer"
        )
    if order is None:
        order = covered
    elif (
        not isinstance(order, list)
        or sorted(o for o in order if type(o) is int) != covered
        or len(order) != len(covered)
    ):
        raise StoreError(f"{where}: the head's window order does not match the stored messages")
    untransmitted = head.pop("untransmitted", [])
    if not isinstance(untransmitted, list) or not all(type(u) is int and u in by_seq for u in untransmitted):
        raise StoreError(f"{where}: the head's untransmitted seqs do not match the stored messages")
    entries = []
    hot: dict[str, Any] | None = None
    for seq in [*order, *tail]:
        entry, hot = _entry(session_id, seq, by_seq[seq].entry, seq not in untransmitted)
        entries.append(entry)
    if tail:
        if hot is None:
            raise StoreError(
                f"{where}: message seq {tail[-1]}, past the head, carries no hot fields: "
                "a message record is missing or extra; refusing to resume with a wrong buffer"
            )
        saved_at = float(hot.pop("saved_at"))
        head.update(hot, seq=tail[-1])
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
