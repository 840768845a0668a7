"""What a session is, in one record: :class:`SessionRecord` (mutable, the session's own) and its frozen form,
:class:`SessionSnapshot` (what ``Session.snapshot()`` returns and ``Session.restore`` takes).

Every field is declared once here, in the record; the snapshot mirrors it (plus the config), and the
conversions between the two go field by field through ``attrs.fields``, so a new field cannot be forgotten
by the snapshot, the restore or the undo of a failed recording.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import attrs

from livestate.calls import PendingCall, call_key
from livestate.events import Timer
from livestate.machine import SessionState
from livestate.policy import SessionConfig
from livestate.window import Unconsumed

__all__ = ["HotFields", "SessionRecord", "SessionSnapshot"]


@attrs.define(eq=False)
class SessionRecord:
    """Every field a session changes as it handles events (no config, no payloads)."""

    state: SessionState = SessionState.IDLE
    #: The ``at`` of the last event handled (snapshots carry it, so a restore can move the clock).
    last_at: float = 0.0
    #: How many connections were opened (the current one's number; 0 before the first).
    connection: int = 0
    #: A connection is being opened: ``setup`` sent, ``setupComplete`` not yet received.
    attempt_open: bool = False
    #: The attempt in progress resumes with a handle.
    resuming: bool = False
    #: Some connection completed setup: the next ``setupComplete`` is a reconnect.
    established: bool = False
    #: Whether the current connection proved progress (a handle, consumed input or server content).
    progressed: bool = False
    #: Whether a fresh session holds the unconsumed input until the application's re-seed.
    holding: bool = False
    #: Attempts without progress in this outage, and in the whole session (the two budgets).
    outage_attempts: int = 0
    session_attempts: int = 0
    #: The last good resumption handle: a secret, never in a repr.
    handle: str | None = attrs.field(default=None, repr=False)
    #: How many handles were stored: tool calls remember it, so a resume from an older one orphans them.
    handle_generation: int = 0
    connection_ended_at: float | None = None
    tool_response_since_handle: bool = False
    #: The latest resumption update on this connection carried a usable handle.
    resumable_now: bool = False
    #: The model's turn is open (content or a tool call, no ``turnComplete`` yet).
    turn_open: bool = False
    #: The last client message's seq (1, 2, 3 … over the whole session).
    seq: int = 0
    #: Transparent mode: the last consumed wire index the server reported on this connection.
    seen_index: int = 0
    #: The wire index of the last message sent on this connection.
    sent_index: int = 0
    #: The wire index of ``unconsumed[0]`` when it went out on this connection.
    first_unconsumed_index: int = 0
    #: Client messages not yet confirmed, in wire order: first those sent on this connection, then those
    #: waiting to go out. A list, not a deque: an empty deque costs 600 bytes per idle session.
    unconsumed: list[Unconsumed] = attrs.Factory(list)
    buffered_bytes: int = 0
    #: Pending calls by id (id-less calls, which Vertex sometimes sends, by a key of their own).
    pending_calls: dict[object, PendingCall] = attrs.Factory(dict)
    #: Ids of calls a resume orphaned (the latest ``max_pending_calls``): a late answer to one is handed back.
    orphaned_ids: dict[str, None] = attrs.Factory(dict)
    timers: dict[Timer, float] = attrs.Factory(dict)

    def shift_clock(self, offset: float) -> None:
        """Move every stored time by ``offset`` (a restore under another clock)."""
        self.last_at += offset
        if self.connection_ended_at is not None:
            self.connection_ended_at += offset
        self.timers = {timer: deadline + offset for timer, deadline in self.timers.items()}
        self.unconsumed = [
            u if u.sent_at is None else attrs.evolve(u, sent_at=u.sent_at + offset) for u in self.unconsumed
        ]

    def hot_fields(self) -> HotFields:
        """The fields a send and server content change (besides the window), and the window's last seq."""
        return HotFields(
            self.seq,
            self.sent_index,
            self.first_unconsumed_index,
            self.buffered_bytes,
            self.last_at,
            self.turn_open,
            self.progressed,
            self.unconsumed[-1].seq if self.unconsumed else None,
        )

    def copy(self) -> SessionRecord:
        """A copy whose containers are its own (what an undo needs: handlers change them in place)."""
        return SessionRecord(**{name: _COPY.get(name, _same)(getattr(self, name)) for name in _NAMES})

    def freeze(self, config: SessionConfig) -> SessionSnapshot:
        """The frozen form, with the config it runs under."""
        return _freeze(self, config)

    @classmethod
    def thaw(cls, snapshot: SessionSnapshot) -> SessionRecord:
        """A record in exactly the state ``snapshot`` captured."""
        return cls(**{name: _THAW.get(name, _same)(getattr(snapshot, name)) for name in _NAMES})


class HotFields(NamedTuple):
    """The few fields the hot paths change (``livestate.snapshots.hot_fields``): a send moves the counters
    and appends to the window; server content opens and closes turns (and marks the first progress). A store
    writes these with a message instead of the whole snapshot. A named tuple: one is read for every send."""

    seq: int
    sent_index: int
    first_unconsumed_index: int
    buffered_bytes: int
    last_at: float
    turn_open: bool
    progressed: bool
    #: The seq of the window's last entry (``None``: empty): a plain send appends its message there.
    last_in_window: int | None


@attrs.frozen(kw_only=True)
class SessionSnapshot:
    """Everything a session is, frozen: ``Session.restore(snapshot)`` rebuilds it (in another process too).

    The fields are :class:`SessionRecord`'s, with tuples for its containers, plus the config. It carries the
    handle, a secret: keep snapshots where you keep credentials.
    """

    config: SessionConfig
    state: SessionState
    #: The ``at`` of the last event before the snapshot.
    last_at: float
    connection: int
    attempt_open: bool
    resuming: bool
    established: bool
    progressed: bool = False
    holding: bool = False
    outage_attempts: int
    session_attempts: int
    handle: str | None = attrs.field(repr=False)
    handle_generation: int
    connection_ended_at: float | None
    tool_response_since_handle: bool
    resumable_now: bool
    turn_open: bool
    seq: int
    seen_index: int
    sent_index: int
    first_unconsumed_index: int
    unconsumed: tuple[Unconsumed, ...]
    buffered_bytes: int
    pending_calls: tuple[PendingCall, ...]
    orphaned_ids: tuple[str, ...] = ()
    timers: tuple[tuple[Timer, float], ...]


def _same(value: Any) -> Any:
    return value


def _sorted_timers(timers: dict[Timer, float]) -> tuple[tuple[Timer, float], ...]:
    return tuple(sorted(timers.items(), key=lambda item: item[0].value))


_NAMES = tuple(field.name for field in attrs.fields(SessionRecord))
_COPY: dict[str, Callable[[Any], Any]] = {
    "unconsumed": list,
    "pending_calls": dict,
    "orphaned_ids": dict,
    "timers": dict,
}
_FREEZE: dict[str, Callable[[Any], Any]] = {
    "unconsumed": tuple,
    "pending_calls": lambda pending: tuple(pending.values()),
    "orphaned_ids": tuple,
    "timers": _sorted_timers,
}
_THAW: dict[str, Callable[[Any], Any]] = {
    "unconsumed": list,
    "pending_calls": lambda pending: {call_key(call): call for call in pending},
    "orphaned_ids": dict.fromkeys,
    "timers": dict,
}


def _compile_freeze() -> Callable[[SessionRecord, SessionConfig], SessionSnapshot]:
    """``freeze`` as one generated call naming every field (as attrs generates ``__init__``): a snapshot is
    taken on every store write, and a loop over the fields costs several times more."""
    fields = ", ".join(
        f"{name}=_FREEZE[{name!r}](record.{name})" if name in _FREEZE else f"{name}=record.{name}"
        for name in _NAMES
    )
    namespace: dict[str, Any] = {"SessionSnapshot": SessionSnapshot, "_FREEZE": _FREEZE}
    exec(f"def freeze(record, config):\n    return SessionSnapshot(config=config, {fields})\n", namespace)
    return namespace["freeze"]  # type: ignore[no-any-return]


_freeze = _compile_freeze()
