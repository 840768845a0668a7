"""Session statistics, derived from the pure core: what happened, counted as it happens.

A :class:`StatsCollector` watches each event a session handled and the commands it returned (a driver feeds
it; so can any transport or a journal replay) and keeps a few counters; :meth:`StatsCollector.snapshot` gives a
frozen :class:`SessionStats`. It reads no clock: every time is an event's ``at``. Cost: a few attribute
updates per lifecycle command; content events pass through untouched.
"""

from __future__ import annotations

from collections import Counter

import attrs

from livestate import commands as c
from livestate import wire
from livestate.events import ConnectionClosed, Event, MessageReceived, TimerFired, TransportFailed
from livestate.machine import LIVE, SessionState
from livestate.session import Session

__all__ = ["SessionStats", "StatsCollector", "reconnect_cause"]


@attrs.frozen(kw_only=True)
class SessionStats:
    """A session's figures at one moment. Times are in the session's clock (the ``at`` of its events)."""

    state: SessionState
    #: When the session entered ``state``.
    state_since: float
    #: Reconnects by cause: ``"goaway"``, ``"close 1006"``, ``"close 1011"``, ``"setup timeout"``,
    #: ``"setup refused"`` …
    reconnects: dict[str, int]
    #: Seconds without a live connection: the last such gap (``None`` before the first), and the longest.
    last_gap: float | None
    longest_gap: float
    #: Client messages the application handed over.
    sent: int
    #: Confirmed by the server (consumed by index, or covered by a handle).
    confirmed: int
    #: Sent again into a new connection after a reconnect.
    replayed: int
    #: Not yet confirmed (buffered for replay) right now.
    unconfirmed: int
    #: Handed back to the application (``MessagesDropped`` + ``MessagesUnconfirmed``).
    handed_back: int
    #: Handle-only mode: replayed messages the server may already have had (at-least-once duplicates).
    duplicates_risked: int
    #: Reconnect attempts without progress still allowed in this outage, and in the session.
    attempts_left_in_outage: int
    attempts_left_in_session: int


def reconnect_cause(before: SessionState, event: Event) -> str:
    """Why a session left a connection, in a word or two (the label of the reconnect counters)."""
    if before is SessionState.GOING_AWAY:
        return "goaway"
    if isinstance(event, ConnectionClosed):
        return f"close {event.code}"
    if isinstance(event, TimerFired):
        return "setup timeout" if event.timer.value == "setup" else f"timer {event.timer.value}"
    if isinstance(event, MessageReceived):
        return "goaway" if isinstance(event.message, wire.GoAway) else "setup refused"
    if isinstance(event, TransportFailed):
        return "transport failed"
    return type(event).__name__


class StatsCollector:
    """Counts what a session does. Call :meth:`observe` with each event and the commands it returned."""

    __slots__ = (
        "_gap_since",
        "_handed_back",
        "_last_gap",
        "_longest_gap",
        "_reconnects",
        "_replayed",
        "_risked",
        "_sent",
        "_state_since",
        "closed_gap",
        "reconnect",
    )

    def __init__(self) -> None:
        self._reconnects: Counter[str] = Counter()
        self._sent = self._replayed = self._handed_back = self._risked = 0
        self._state_since = 0.0
        self._gap_since: float | None = None
        self._last_gap: float | None = None
        self._longest_gap = 0.0
        #: What the last :meth:`observe` saw: the cause of a reconnect that began (``None``: none began) and
        #: the length of a gap that ended (``None``: none ended). Telemetry reads these, so the two never
        #: disagree.
        self.reconnect: str | None = None
        self.closed_gap: float | None = None

    def observe(self, session: Session, event: Event, out: tuple[c.Command, ...]) -> None:
        """Account for ``event``, which ``session`` just handled, returning ``out``."""
        self.reconnect = self.closed_gap = None
        for command in out:
            kind = type(command)
            if kind is c.BufferMessage:
                self._sent += 1
            elif kind is c.StateChanged:
                self._on_state(command, event)  # type: ignore[arg-type]
            elif kind is c.Resumed:
                self._replayed += command.replayed  # type: ignore[union-attr]
                if command.state_restored and not session.config.transparent:  # type: ignore[union-attr]
                    self._risked += command.replayed  # type: ignore[union-attr]
            elif kind is c.MessagesDropped or kind is c.MessagesUnconfirmed:
                self._handed_back += command.count  # type: ignore[union-attr]

    def _on_state(self, change: c.StateChanged, event: Event) -> None:
        at = event.at
        self._state_since = at
        if change.new is SessionState.RECONNECTING and change.old is not SessionState.RECONNECTING:
            self.reconnect = reconnect_cause(change.old, event)
            self._reconnects[self.reconnect] += 1
        if change.old in LIVE and change.new not in LIVE:
            self._gap_since = at
        elif change.new in LIVE and change.old not in LIVE and self._gap_since is not None:
            gap = self.closed_gap = at - self._gap_since
            self._last_gap, self._longest_gap = gap, max(self._longest_gap, gap)
            self._gap_since = None

    def snapshot(self, session: Session) -> SessionStats:
        """The figures now."""
        config = session.config
        unconfirmed = session.unconfirmed_count
        return SessionStats(
            state=session.state,
            state_since=self._state_since,
            reconnects=dict(self._reconnects),
            last_gap=self._last_gap,
            longest_gap=self._longest_gap,
            sent=self._sent,
            confirmed=self._sent - unconfirmed - self._handed_back,
            replayed=self._replayed,
            unconfirmed=unconfirmed,
            handed_back=self._handed_back,
            duplicates_risked=self._risked,
            attempts_left_in_outage=max(0, config.max_attempts_per_outage - session.outage_attempts),
            attempts_left_in_session=max(0, config.max_attempts_per_session - session.session_attempts),
        )
