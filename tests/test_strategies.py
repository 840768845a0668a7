"""livestate.testing.strategies: what the schedule strategies draw is what a session meets on the wire."""

from __future__ import annotations

from hypothesis import given

from livestate import SessionState, wire
from livestate.policy import DEFAULT_CLOSE_RULES, CloseAction, classify_close
from livestate.testing import strategies

from helpers import driver


@given(strategies.resumption_updates(max_index=7))
def test_resumption_updates_round_trip_and_stay_in_range(update: wire.SessionResumptionUpdate) -> None:
    assert wire.decode(wire.encode(update)) == update
    if update.resumable:
        assert update.new_handle
    index = update.last_consumed_client_message_index
    assert index is None or 0 <= index <= 7


@given(strategies.resumption_updates(transparent=False))
def test_handle_only_updates_carry_no_index(update: wire.SessionResumptionUpdate) -> None:
    assert update.last_consumed_client_message_index is None


@given(strategies.go_aways(max_seconds=5.0))
def test_go_aways_round_trip_within_max_seconds(go_away: wire.GoAway) -> None:
    assert wire.decode(wire.encode(go_away)) == go_away
    assert go_away.time_left is None or 0 <= go_away.time_left.seconds <= 5.0


@given(strategies.closes())
def test_every_known_close_is_one_the_session_handles(close: tuple[int, str]) -> None:
    assert close in strategies.CLOSES
    code, reason = close
    d = driver().live()
    d.close(code, reason)
    action = classify_close(DEFAULT_CLOSE_RULES, code, reason)
    if action is CloseAction.RETRY:
        assert d.session.state is SessionState.RECONNECTING
    elif action is CloseAction.FATAL:
        assert d.session.state is SessionState.FAILED
    else:  # a rejected live connection: a fresh start, or the end when there is nothing to resume
        assert d.session.state in (SessionState.RECONNECTING, SessionState.FAILED)
