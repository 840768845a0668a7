"""Configuration and policy: ``SessionConfig``, close-code classification, backoff with deterministic jitter.

Every timing is a knob whose default suits the real service; tests and the demo compress time through them.
Close codes map to an action through one overridable table, as data.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from typing import Any

import attrs

from livestate import wire
from livestate.errors import UsageError

__all__ = [
    "DEFAULT_CLOSE_RULES",
    "Backend",
    "CloseAction",
    "CloseRule",
    "SessionConfig",
    "backoff_delay",
    "classify_close",
]


class Backend(enum.Enum):
    """Which service the session talks to."""

    #: The Gemini Developer API: handles only, no ``lastConsumedClientMessageIndex`` (handle-only mode).
    GEMINI_API = "gemini_api"
    #: Vertex AI: supports ``transparent`` resumption with per-connection message indexes.
    VERTEX = "vertex"


class CloseAction(enum.Enum):
    """What to do about a connection the session did not close itself."""

    #: Reconnect (resume with the handle when there is one), with backoff and within the budgets.
    RETRY = "retry"
    #: The server refused this setup: on a resume attempt start a fresh session; otherwise fail.
    REJECTED = "rejected"
    #: Give up: the session fails with ``SessionFailed``.
    FATAL = "fatal"


@attrs.frozen(kw_only=True)
class CloseRule:
    """One row of the close classification: a code, an optional reason substring, and the action."""

    #: The WebSocket close code (1006 is what transports report when no close frame arrived).
    code: int
    #: Case-insensitive substring the reason must contain; ``None`` matches any reason.
    reason_contains: str | None = None
    action: CloseAction

    def matches(self, code: int, reason: str) -> bool:
        """Whether this rule applies to a close with ``code`` and ``reason``."""
        if code != self.code:
            return False
        return self.reason_contains is None or self.reason_contains.lower() in reason.lower()


#: The default classification (PROTOCOL.md §6.3). The first matching rule wins; unmatched codes retry.
DEFAULT_CLOSE_RULES: tuple[CloseRule, ...] = (
    CloseRule(code=1000, action=CloseAction.RETRY),
    CloseRule(code=1001, action=CloseAction.RETRY),
    CloseRule(code=1006, action=CloseAction.RETRY),
    CloseRule(code=1007, action=CloseAction.REJECTED),
    CloseRule(code=1008, reason_contains="aborted", action=CloseAction.RETRY),
    CloseRule(code=1008, action=CloseAction.REJECTED),
    CloseRule(code=1011, action=CloseAction.RETRY),
)


def classify_close(rules: tuple[CloseRule, ...], code: int, reason: str) -> CloseAction:
    """The action of the first rule matching ``code`` and ``reason``; RETRY when none does."""
    for rule in rules:
        if rule.matches(code, reason):
            return rule.action
    return CloseAction.RETRY


def _number(minimum: float, *, above: bool = False) -> Callable[[object, attrs.Attribute[Any], Any], None]:
    """A validator: a real, finite number ``>= minimum`` (``> minimum`` when ``above``)."""

    def check(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise UsageError(f"SessionConfig.{attribute.name} must be a finite number, got {value!r}")
        if value < minimum or (above and value == minimum):
            bound = f"greater than {minimum}" if above else f"at least {minimum}"
            raise UsageError(f"SessionConfig.{attribute.name} must be {bound}, got {value!r}")

    return check


def _integer(minimum: int) -> Callable[[object, attrs.Attribute[Any], Any], None]:
    """A validator: an int (not a bool) ``>= minimum``."""

    def check(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"SessionConfig.{attribute.name} must be an int, got {value!r}")
        if value < minimum:
            raise UsageError(f"SessionConfig.{attribute.name} must be at least {minimum}, got {value!r}")

    return check


def _instance(kind: type | tuple[type, ...]) -> Callable[[object, attrs.Attribute[Any], Any], None]:
    """A validator: an instance of ``kind`` (for bools, exactly ``True`` or ``False``)."""

    def check(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, kind):
            name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise UsageError(f"SessionConfig.{attribute.name} must be a {name}, got {value!r}")

    return check


def _close_rules(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, tuple) or not all(isinstance(rule, CloseRule) for rule in value):
        raise UsageError(f"SessionConfig.close_rules must be a tuple of CloseRule, got {value!r}")


@attrs.frozen(kw_only=True)
class SessionConfig:
    """Everything a :class:`~livestate.Session` needs to know up front. Immutable; share it freely.

    Every field is checked when the config is made: a wrong type, a value out of range, ``backoff_max`` below
    ``backoff_initial``, ``transparent`` on the Gemini API, an empty model or a ``sessionResumption`` set by
    hand (livestate owns it) raise :class:`UsageError` naming the field.

    The defaults are the product: lossless (nothing the application sends is dropped without being handed
    back), and a session that keeps making progress never spends its reconnect budget. Tests and demos
    compress time through the timing knobs only.

    Fields (times in seconds; every one but ``setup`` has a default, shown in brackets):

    - ``setup``: the ``wire.Setup`` sent on every connection (model, generation config …); livestate fills in
      ``sessionResumption``, so it must not set it.
    - ``backend`` [``Backend.GEMINI_API``]: ``Backend.VERTEX`` for Vertex AI.
    - ``transparent`` [False]: Vertex only: ask for ``lastConsumedClientMessageIndex`` and replay exactly what
      was not consumed (exactly once); otherwise handle-only mode (at least once).
    - ``setup_timeout`` [15]: wait this long for ``setupComplete`` before the attempt counts as failed.
    - ``goaway_margin`` [5]: after a ``goAway``, reconnect this long before its deadline at the latest.
    - ``guard_window`` [2]: handle-only mode: messages sent less than this long before a new handle are kept
      for replay (lower risks loss, higher risks duplicates).
    - ``healthy_after`` [10]: a connection up this long resets the per-outage attempt count.
    - ``handle_ttl`` [7200]: a handle older than this (after the last connection ended) is not used; the
      session starts fresh.
    - ``backoff_initial`` [0.5], ``backoff_factor`` [2], ``backoff_max`` [30], ``backoff_jitter`` [0.5]:
      the wait before attempt n of an outage is ``min(backoff_max, backoff_initial * backoff_factor**(n-2))``
      times a jitter in ``[1 - backoff_jitter, 1]``; the first attempt is immediate.
    - ``max_attempts_per_outage`` [5], ``max_attempts_per_session`` [100]: attempts without progress allowed
      before ``SessionFailed`` (an attempt that brings a handle, an index advance or content is not counted).
    - ``seed`` [0]: seed of the deterministic jitter.
    - ``close_rules`` [``DEFAULT_CLOSE_RULES``]: close code (and reason) to retry, rejected or fatal; the
      first matching ``CloseRule`` wins, unmatched codes retry.
    - ``max_buffer_messages`` [20000], ``max_buffer_bytes`` [64 MiB]: unconfirmed client messages kept for
      replay; beyond either, ``send`` raises ``BufferFull`` (drivers wait for room).
    - ``drop_oldest_when_full`` [False]: evict the oldest tenth of a full buffer instead (handed back in a
      ``MessagesDropped`` notice).
    - ``first_client_index`` [1]: transparent mode: the wire index of the first client message after setup.
    - ``replay_after_fresh_session`` [True]: after a rejected resume, replay the unconsumed input into the
      fresh session; ``False`` hands it back in ``MessagesDropped`` instead.
    - ``reseed_history`` [False]: a fresh session replacing a lost one asks for
      ``historyConfig.initialHistoryInClientContent``; the unconsumed input is held (``Resumed.held``) until
      the application re-seeds the history (``clientContent`` with ``turnComplete``) or ``reseed_timeout``.
    - ``hold_for_reseed`` [None]: hold that input for the re-seed without asking for ``historyConfig``
      (``None``: exactly when ``reseed_history`` is on).
    - ``reseed_timeout`` [10]: how long held input waits for that re-seed.
    - ``max_pending_calls`` [1024]: tool calls pending at once; more is a ``ProtocolError``.
    - ``max_frame_bytes`` [1 MiB]: longer server frames are a ``ProtocolError`` before parsing (drivers
      refuse them at the socket).
    """

    #: The setup sent on every connection; livestate fills in ``sessionResumption``.
    setup: wire.Setup = attrs.field(validator=_instance(wire.Setup))
    #: Which service: ``Backend.GEMINI_API`` (handle-only) or ``Backend.VERTEX``.
    backend: Backend = attrs.field(default=Backend.GEMINI_API, validator=_instance(Backend))
    #: Ask for ``lastConsumedClientMessageIndex`` (Vertex only) and replay exactly what was not consumed.
    transparent: bool = attrs.field(default=False, validator=_instance(bool))
    #: Seconds to wait for ``setupComplete`` before the attempt counts as failed.
    setup_timeout: float = attrs.field(default=15.0, validator=_number(0, above=True))
    #: Reconnect this many seconds before a ``goAway`` deadline at the latest.
    goaway_margin: float = attrs.field(default=5.0, validator=_number(0))
    #: Handle-only mode: messages sent less than this long before a new handle are kept for replay.
    guard_window: float = attrs.field(default=2.0, validator=_number(0))
    #: A connection that stays up this long resets the per-outage attempt count (a secondary reset: any
    #: progress on a connection resets it first, see ``max_attempts_per_outage``).
    healthy_after: float = attrs.field(default=10.0, validator=_number(0, above=True))
    #: A handle older than this (after the last connection ended) is not used; the session starts fresh.
    handle_ttl: float = attrs.field(default=7200.0, validator=_number(0, above=True))
    #: Backoff before reconnect attempt n: ``min(backoff_max, backoff_initial * backoff_factor**(n-2))``,
    #: with the first attempt of an outage immediate, scaled by a jitter in ``[1 - backoff_jitter, 1]``.
    backoff_initial: float = attrs.field(default=0.5, validator=_number(0))
    #: Growth of the backoff from one attempt to the next (see ``backoff_initial``).
    backoff_factor: float = attrs.field(default=2.0, validator=_number(1))
    #: The longest backoff (see ``backoff_initial``).
    backoff_max: float = attrs.field(default=30.0, validator=_number(0))
    #: The jitter's range, in [0, 1] (see ``backoff_initial``).
    backoff_jitter: float = attrs.field(default=0.5, validator=_number(0))
    #: Reconnect attempts that made no progress allowed in one outage, and over the whole session. An attempt
    #: makes progress when its connection completes setup and then brings a resumable handle, consumes
    #: input (an index advance) or carries server content; that ends the outage and the attempt is not
    #: counted. So a session that keeps making progress never fails, however often it is dropped.
    max_attempts_per_outage: int = attrs.field(default=5, validator=_integer(1))
    #: See ``max_attempts_per_outage``.
    max_attempts_per_session: int = attrs.field(default=100, validator=_integer(1))
    #: Seed of the deterministic jitter.
    seed: int = attrs.field(default=0, validator=_integer(-(2**63)))
    #: Close code (and reason) to action; the first matching rule wins, unmatched codes retry.
    close_rules: tuple[CloseRule, ...] = attrs.field(default=DEFAULT_CLOSE_RULES, validator=_close_rules)
    #: Unconsumed client messages kept for replay. When either limit is reached, ``Session`` raises
    #: ``BufferFull`` (the async drivers make ``send()`` wait for room) unless ``drop_oldest_when_full``.
    max_buffer_messages: int = attrs.field(default=20_000, validator=_integer(1))
    #: See ``max_buffer_messages``: the same limit in payload bytes.
    max_buffer_bytes: int = attrs.field(default=64 << 20, validator=_integer(1))
    #: Opt-in: when the buffer is full, evict the oldest tenth of it (handed back in one notice) instead.
    drop_oldest_when_full: bool = attrs.field(default=False, validator=_instance(bool))
    #: Transparent mode: the wire index of the first client message after ``setup`` (which is 0).
    first_client_index: int = attrs.field(default=1, validator=_integer(0))
    #: After a resume is rejected and a fresh session starts: replay the unconsumed input into it (``True``,
    #: lossless), or hand it back in a ``MessagesDropped`` notice without sending it (``False``).
    replay_after_fresh_session: bool = attrs.field(default=True, validator=_instance(bool))
    #: A fresh session that replaces a lost one (its resume was rejected or its handle expired) asks for
    #: ``historyConfig.initialHistoryInClientContent`` so the application can re-seed the conversation; the
    #: unconsumed input then waits for the re-seed (the application's ``clientContent`` with
    #: ``turnComplete``) or ``reseed_timeout``, whichever comes first, and goes out after it.
    reseed_history: bool = attrs.field(default=False, validator=_instance(bool))
    #: Hold the unconsumed input of a fresh session for the application's re-seed (as ``reseed_history``
    #: does) without asking for ``historyConfig``: for frameworks that re-send their context by themselves
    #: where ``historyConfig`` is not offered. ``None``: hold exactly when ``reseed_history`` is on.
    hold_for_reseed: bool | None = attrs.field(
        default=None, validator=attrs.validators.optional(_instance(bool))
    )
    #: Seconds a fresh session waits for the application's re-seed before the held input goes out anyway.
    reseed_timeout: float = attrs.field(default=10.0, validator=_number(0))
    #: Tool calls the model may have pending at once; more is a ``ProtocolError``.
    max_pending_calls: int = attrs.field(default=1024, validator=_integer(1))
    #: Frames longer than this are a ProtocolError before parsing (and refused at the socket by drivers).
    max_frame_bytes: int = attrs.field(default=wire.DEFAULT_MAX_FRAME_BYTES, validator=_integer(1))

    def __attrs_post_init__(self) -> None:
        if self.transparent and self.backend is not Backend.VERTEX:
            raise UsageError("transparent resumption is supported on Backend.VERTEX only")
        if self.backoff_max < self.backoff_initial:
            raise UsageError(
                f"SessionConfig.backoff_max ({self.backoff_max}) must be at least backoff_initial "
                f"({self.backoff_initial})"
            )
        if self.backoff_jitter > 1:
            raise UsageError(f"SessionConfig.backoff_jitter must be in [0, 1], got {self.backoff_jitter}")
        if not isinstance(self.setup.model, str) or not self.setup.model.strip():
            raise UsageError("SessionConfig.setup.model must be a non-empty model name")
        if self.setup.session_resumption is not None or any(
            key in self.setup.extra for key in ("sessionResumption", "session_resumption")
        ):
            raise UsageError(
                "SessionConfig.setup must not set sessionResumption: livestate sends it (with the handle)"
            )
        if any(key in self.setup.extra for key in ("historyConfig", "history_config")):
            raise UsageError("SessionConfig.setup must not set historyConfig in extra: use history_config")

    @property
    def holds_for_reseed(self) -> bool:
        """Whether a fresh session that replaces a lost one holds the unconsumed input for the re-seed."""
        return self.reseed_history if self.hold_for_reseed is None else self.hold_for_reseed

    def setup_for(self, handle: str | None, *, replacing: bool = False) -> wire.Setup:
        """The setup to send: a fresh resumable session (``handle=None``) or a resume of ``handle``.
        ``replacing`` marks a fresh session that replaces a lost one (see ``reseed_history``)."""
        resumption = wire.SessionResumptionConfig(
            handle=handle, transparent=True if self.transparent else None
        )
        setup = attrs.evolve(self.setup, session_resumption=resumption)
        if replacing and self.reseed_history:
            setup = attrs.evolve(
                setup, history_config=wire.HistoryConfig(initial_history_in_client_content=True)
            )
        return setup


def _mix(value: int) -> int:
    """SplitMix64: a well-spread 64-bit hash, so jitter is deterministic without a random source."""
    value = (value + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return value ^ (value >> 31)


def backoff_delay(config: SessionConfig, attempt: int, draw: int) -> float:
    """Seconds to wait before reconnect ``attempt`` (1-based within an outage); ``draw`` picks the jitter."""
    if attempt <= 1:
        return 0.0
    base = min(config.backoff_max, config.backoff_initial * config.backoff_factor ** (attempt - 2))
    fraction = _mix(config.seed * 1_000_003 + draw) / 2**64
    return base * (1.0 - config.backoff_jitter * fraction)
