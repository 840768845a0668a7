"""An independent statement of the session lifecycle, written from PROTOCOL.md, not from livestate.machine.

``EDGES[(state, trigger)]`` is a list of ``(destination, guard)``: the first whose guard holds wins;
``None`` as destination means the state does not change; ``None`` as guard means unconditional. A pair that is
absent is not allowed in that state.
"""

from __future__ import annotations

LIVE_OPEN = ("SETUP_COMPLETE", "RESUMABLE", "GENERATING")
WITH_A_CONNECTION = ("CONNECTING", *LIVE_OPEN, "GOING_AWAY", "RECONNECTING")

Edge = tuple[str | None, str | None]
EDGES: dict[tuple[str, str], list[Edge]] = {}


def allow(states: tuple[str, ...] | str, trigger: str, *edges: Edge) -> None:
    for state in (states,) if isinstance(states, str) else states:
        EDGES[(state, trigger)] = list(edges)


# Starting: one connection, setup, then setupComplete.
allow("IDLE", "connect", ("CONNECTING", None))
allow(("CONNECTING", "RECONNECTING"), "setup_complete", ("SETUP_COMPLETE", "attempt_open"))
# Resumption updates: a usable handle makes the session resumable; resumable=false means generating.
allow(LIVE_OPEN, "handle_update", ("RESUMABLE", None))
allow(LIVE_OPEN, "not_resumable", ("GENERATING", None))
allow("GOING_AWAY", "handle_update", (None, None))
allow("GOING_AWAY", "not_resumable", (None, None))
# goAway: drain to a safe point, or leave at the deadline.
allow((*LIVE_OPEN, "GOING_AWAY"), "go_away", ("GOING_AWAY", None))
allow("GOING_AWAY", "drain", ("RECONNECTING", "at_safe_point"))
allow("GOING_AWAY", "deadline", ("RECONNECTING", None))
# Losing a connection (or its setup): retry within budget, otherwise fail.
allow(WITH_A_CONNECTION, "connection_lost", ("RECONNECTING", "may_retry"), ("FAILED", None))
allow(("CONNECTING", "RECONNECTING"), "setup_timeout", ("RECONNECTING", "may_retry"), ("FAILED", None))
# An error frame instead of setupComplete: a refused resume starts fresh; a refused fresh setup is final.
allow(("CONNECTING", "RECONNECTING"), "setup_refused", ("RECONNECTING", "may_retry"), ("FAILED", None))
# A transport error no reconnect can fix (bad URL, HTTP 401/403/404, a crashed sender).
allow(WITH_A_CONNECTION, "transport_failed", ("FAILED", None))
allow("RECONNECTING", "backoff_elapsed", (None, None))
# The application can close from anywhere that is not terminal.
allow(("IDLE", *WITH_A_CONNECTION), "close", ("CLOSED", None))

TERMINAL = ("CLOSED", "FAILED")
GUARDS = ("attempt_open", "at_safe_point", "may_retry")
