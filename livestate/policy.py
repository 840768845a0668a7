"""Configuration and policy: ``SessionConfig``, close-code classification, backoff with deterministic jitter.

Every timing is a knob whose default suits the real service; tests and the demo compress time through them.
Close codes map to an action through one overridable table, as data.
"""

from __future__ import annotations

import enum

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


def _non_negative(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise UsageError(f"SessionConfig.{attribute.name} must not be negative, got {value!r}")


@attrs.frozen(kw_only=True)
class SessionConfig:
    """Everything a :class:`~livestate.Session` needs to know up front. Immutable; share it freely.

    Raises :class:`UsageError` for a configuration the service would refuse (``transparent`` on the Gemini API).
    """

    #: The setup sent on every connection; livestate fills in ``sessionResumption``.
    setup: wire.Setup
    backend: Backend = Backend.GEMINI_API
    #: Ask for ``lastConsumedClientMessageIndex`` (Vertex only) and replay exactly what was not consumed.
    transparent: bool = False
    #: Seconds to wait for ``setupComplete`` before the attempt counts as failed.
    setup_timeout: float = attrs.field(default=15.0, validator=_non_negative)
    #: Reconnect this many seconds before a ``goAway`` deadline at the latest.
    goaway_margin: float = attrs.field(default=5.0, validator=_non_negative)
    #: Handle-only mode: messages sent less than this long before a new handle are kept for replay.
    guard_window: float = attrs.field(default=2.0, validator=_non_negative)
    #: A connection that stays up this long resets the per-outage attempt count.
    healthy_after: float = attrs.field(default=10.0, validator=_non_negative)
    #: A handle older than this (after the last connection ended) is not used; the session starts fresh.
    handle_ttl: float = attrs.field(default=7200.0, validator=_non_negative)
    #: Backoff before reconnect attempt n: ``min(backoff_max, backoff_initial * backoff_factor**(n-2))``,
    #: with the first attempt of an outage immediate, scaled by a jitter in ``[1 - backoff_jitter, 1]``.
    backoff_initial: float = attrs.field(default=0.5, validator=_non_negative)
    backoff_factor: float = attrs.field(default=2.0, validator=_non_negative)
    backoff_max: float = attrs.field(default=30.0, validator=_non_negative)
    backoff_jitter: float = attrs.field(default=0.5, validator=_non_negative)
    #: Reconnect attempts allowed in one outage, and over the whole session.
    max_attempts_per_outage: int = 5
    max_attempts_per_session: int = 100
    #: Seed of the deterministic jitter.
    seed: int = 0
    close_rules: tuple[CloseRule, ...] = DEFAULT_CLOSE_RULES
    #: Unconsumed client messages kept for replay; past either limit the oldest are dropped (and counted).
    max_buffer_messages: int = 20_000
    max_buffer_bytes: int = 64 << 20
    #: Transparent mode: the wire index of the first client message after ``setup`` (which is 0).
    first_client_index: int = 1
    #: After a resume is rejected and a fresh session starts: replay the buffered input into it (``True``),
    #: or drop it with a ``MessagesDropped`` notice so the application can re-seed history first (``False``).
    replay_after_fresh_session: bool = False
    #: A fresh session that replaces a lost one (its resume was rejected or its handle expired) asks for
    #: ``historyConfig.initialHistoryInClientContent`` so the application can re-seed the conversation.
    reseed_history: bool = False
    #: Frames longer than this are a ProtocolError before parsing.
    max_frame_bytes: int = wire.DEFAULT_MAX_FRAME_BYTES

    def __attrs_post_init__(self) -> None:
        if self.transparent and self.backend is not Backend.VERTEX:
            raise UsageError("transparent resumption is supported on Backend.VERTEX only")
        if self.max_attempts_per_outage < 1 or self.max_attempts_per_session < 1:
            raise UsageError("attempt budgets must be at least 1")

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
