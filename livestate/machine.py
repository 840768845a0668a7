"""THE table: every lifecycle state, trigger, source, destination and condition of a session, in one place.

Rule: whatever decides *whether* a session changes state is in :data:`TABLE` or a condition named there.
The runtime machine (:data:`MACHINE`), the diagrams (``livestate.diagrams``) and the README's state
explanation are all built from this table, so they cannot disagree.

Policy for pairs the table does not list: the session raises (``ProtocolError`` for a server message,
``UsageError`` for an application event) and stays as it was, except that ``CLOSED`` and ``FAILED`` absorb
every transport event. Rows with the same trigger and source are tried in order; the first whose conditions
hold wins, and each guarded group ends with an unconditional row. That policy, and what the session asks of
a state on every event (is it started, live, ended, can it drain), are each state's :data:`TRAITS`, derived
here from the table and the state sets, so no handler tests a state itself.

Callbacks and conditions are the session model's methods named in the table; ``transitions`` calls them with
the trigger's inputs as arguments (``event``, and for ``go_away`` the ``deadline``), not an ``EventData``.
"""

from __future__ import annotations

import enum
import logging
from typing import Any

import attrs
from transitions import Machine, MachineError

from livestate.errors import UsageError

__all__ = [
    "LIVE",
    "MACHINE",
    "STATE_DOCS",
    "TABLE",
    "TERMINAL",
    "TRAITS",
    "TRIGGERS",
    "Row",
    "SessionState",
    "Traits",
    "fire",
]


class SessionState(enum.Enum):
    """Where a session is in its lifecycle."""

    #: Created; nothing sent yet. ``Connect`` starts it.
    IDLE = "idle"
    #: The first connection is open or opening; ``setup`` sent, ``setupComplete`` awaited.
    CONNECTING = "connecting"
    #: Live; no resumption update seen yet on this connection.
    SETUP_COMPLETE = "setup_complete"
    #: Live; the latest update carried a usable handle.
    RESUMABLE = "resumable"
    #: Live; the latest update said ``resumable: false`` (generating or running tool calls).
    GENERATING = "generating"
    #: Live, but the server sent ``goAway``: waiting for a safe point or the deadline.
    GOING_AWAY = "going_away"
    #: Between connections: backing off, or waiting for the new connection's ``setupComplete``.
    RECONNECTING = "reconnecting"
    #: Closed by the application. Terminal.
    CLOSED = "closed"
    #: Gave up (fatal close, refused fresh setup, permanent transport error, budget spent). Terminal.
    FAILED = "failed"


S = SessionState
TERMINAL = frozenset({S.CLOSED, S.FAILED})
LIVE = frozenset({S.SETUP_COMPLETE, S.RESUMABLE, S.GENERATING, S.GOING_AWAY})
_OPEN = (S.SETUP_COMPLETE, S.RESUMABLE, S.GENERATING)
_ANY_CONNECTION = (S.CONNECTING, *_OPEN, S.GOING_AWAY, S.RECONNECTING)
_NOT_TERMINAL = (S.IDLE, *_ANY_CONNECTION)

STATE_DOCS: dict[SessionState, str] = {
    S.IDLE: "Created; nothing sent yet.",
    S.CONNECTING: "First connection opening: `setup` sent, `setupComplete` awaited under `setup_timeout`.",
    S.SETUP_COMPLETE: "Live; client messages flow; no resumption update yet on this connection.",
    S.RESUMABLE: "Live; the latest update carried a usable handle, which is stored.",
    S.GENERATING: "Live; the latest update said `resumable: false`; the last good handle is kept.",
    S.GOING_AWAY: "Live after `goAway`: reconnects at the first safe turn boundary or at the deadline.",
    S.RECONNECTING: "Between connections: old one closed, backing off or awaiting the new `setupComplete`; "
    "sends are buffered.",
    S.CLOSED: "Closed by the application. Terminal.",
    S.FAILED: "Gave up: fatal close, refused fresh setup, permanent transport error, or the budget of attempts "
    "without progress spent. Terminal.",
}


@attrs.frozen
class Row:
    """One transition: ``trigger`` moves ``sources`` to ``dest`` (``None``: stay, internal) if ``conditions``
    all hold, then runs the session method ``after``."""

    trigger: str
    sources: tuple[SessionState, ...]
    dest: SessionState | None
    conditions: tuple[str, ...] = ()
    after: str | None = None
    #: What the row means, for the docs.
    doc: str = ""


TABLE: tuple[Row, ...] = (
    Row("connect", (S.IDLE,), S.CONNECTING, after="start", doc="`Connect`: open the first connection"),
    Row(
        "setup_complete",
        (S.CONNECTING, S.RECONNECTING),
        S.SETUP_COMPLETE,
        ("attempt_open",),
        "on_setup_complete",
        "`setupComplete`: replay the unconsumed buffer, then go live",
    ),
    Row(
        "handle_update",
        _OPEN,
        S.RESUMABLE,
        after="on_handle_update",
        doc="resumable update: store the handle, trim",
    ),
    Row(
        "handle_update", (S.GOING_AWAY,), None, after="on_handle_update", doc="a fresh handle while draining"
    ),
    Row(
        "not_resumable",
        _OPEN,
        S.GENERATING,
        after="on_not_resumable",
        doc="`resumable: false`: keep the last handle",
    ),
    Row("not_resumable", (S.GOING_AWAY,), None, after="on_not_resumable", doc="not resumable while draining"),
    Row(
        "go_away",
        (*_OPEN, S.GOING_AWAY),
        S.GOING_AWAY,
        after="on_go_away",
        doc="`goAway`: arm the deadline timer",
    ),
    Row(
        "drain",
        (S.GOING_AWAY,),
        S.RECONNECTING,
        ("at_safe_point",),
        "reconnect_planned",
        "turn over, no call pending, fresh handle: close and resume",
    ),
    Row(
        "deadline",
        (S.GOING_AWAY,),
        S.RECONNECTING,
        after="reconnect_planned",
        doc="deadline timer: resume now",
    ),
    Row(
        "connection_lost",
        _ANY_CONNECTION,
        S.RECONNECTING,
        ("may_retry",),
        "recover",
        "retryable close within budget: back off, resume (or start fresh if the handle was rejected)",
    ),
    Row("connection_lost", _ANY_CONNECTION, S.FAILED, after="fail", doc="fatal close or budget spent"),
    Row(
        "setup_refused",
        (S.CONNECTING, S.RECONNECTING),
        S.RECONNECTING,
        ("may_retry",),
        "recover",
        "an `error` frame answers a resume's `setup`: the handle is refused, start a fresh session",
    ),
    Row(
        "setup_refused",
        (S.CONNECTING, S.RECONNECTING),
        S.FAILED,
        after="fail",
        doc="an `error` frame answers a fresh `setup`: fail with the server's words",
    ),
    Row(
        "transport_failed",
        _ANY_CONNECTION,
        S.FAILED,
        after="fail",
        doc="bad URL, HTTP 401/403/404 or a crashed sender: fail at once",
    ),
    Row(
        "setup_timeout",
        (S.CONNECTING, S.RECONNECTING),
        S.RECONNECTING,
        ("may_retry",),
        "recover",
        "no `setupComplete` in time: close and retry",
    ),
    Row(
        "setup_timeout",
        (S.CONNECTING, S.RECONNECTING),
        S.FAILED,
        after="fail",
        doc="no `setupComplete`, no budget",
    ),
    Row(
        "backoff_elapsed",
        (S.RECONNECTING,),
        None,
        after="open_attempt",
        doc="backoff over: open the next attempt",
    ),
    Row("close", _NOT_TERMINAL, S.CLOSED, after="on_close", doc="`CloseRequested`: close and stop"),
)

TRIGGERS: tuple[str, ...] = tuple(dict.fromkeys(row.trigger for row in TABLE))


@attrs.frozen
class Traits:
    """What a state means for every event the session handles (derived from the table, never tested one by
    one in handlers)."""

    #: ``Connect`` has happened: before it, any other event is a usage error.
    started: bool
    #: A connection is past ``setupComplete``: content takes the fast path, client messages go out.
    live: bool
    #: Terminal: transport events are absorbed, application sends refused.
    ended: bool
    #: The table has a ``drain`` row from here: after every event, the session tries it.
    drains: bool


TRAITS: dict[SessionState, Traits] = {
    state: Traits(
        started=state is not S.IDLE,
        live=state in LIVE,
        ended=state in TERMINAL,
        drains=any(row.trigger == "drain" and state in row.sources for row in TABLE),
    )
    for state in SessionState
}


def transitions_config() -> list[dict[str, Any]]:
    """The table in the form ``transitions.Machine`` takes (also used by the diagrams)."""
    out = []
    for row in TABLE:
        spec: dict[str, Any] = {"trigger": row.trigger, "source": list(row.sources), "dest": row.dest}
        if row.conditions:
            spec["conditions"] = list(row.conditions)
        if row.after:
            spec["after"] = row.after
        out.append(spec)
    return out


# transitions logs every callback at INFO (about 230 lines a session): quiet by default, unless the
# application set a level for it itself.
for _name in ("transitions", "transitions.core"):
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.WARNING)

#: The one runtime machine, shared by every session (sessions are bare models fired through it).
MACHINE = Machine(
    model=None,
    states=SessionState,
    initial=None,
    transitions=transitions_config(),
    auto_transitions=False,
    send_event=False,
    queued=False,
    ignore_invalid_triggers=False,
)


def fire(model: Any, trigger: str, **kwargs: Any) -> bool:
    """Fire ``trigger`` on ``model`` through :data:`MACHINE`; ``UsageError`` if the state has no such row."""
    try:
        return bool(MACHINE.events[trigger].trigger(model, **kwargs))
    except MachineError:
        raise UsageError(f"{trigger} is not allowed in {model.state.name}") from None
