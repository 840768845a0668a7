"""Server → client messages (``BidiGenerateContentServerMessage``).

A frame holds one message kind, optionally with ``usageMetadata`` beside it; the decoder returns one of the
classes below with that usage attached as ``usage_metadata``. A frame with only usage decodes to
:class:`UsageReport`, an in-band ``error`` to :class:`ServerError`, and a frame whose keys are all unknown to
:class:`UnknownMessage`, which keeps the raw object.
"""

from __future__ import annotations

from typing import Any

import attrs

from livestate.wire.content import Content, FunctionCall
from livestate.wire.scalars import Duration, JsonObject, MessageIndex

__all__ = [
    "GoAway",
    "ModalityTokenCount",
    "ServerContent",
    "ServerError",
    "ServerMessage",
    "SessionResumptionUpdate",
    "SetupComplete",
    "ToolCall",
    "ToolCallCancellation",
    "Transcription",
    "UnknownMessage",
    "UrlContextMetadata",
    "UrlMetadata",
    "UsageMetadata",
    "UsageReport",
    "VoiceActivity",
    "VoiceActivityDetectionSignal",
    "VoiceConsentSignature",
    "WordInfo",
]


@attrs.frozen(kw_only=True)
class ModalityTokenCount:
    """Tokens of one modality (``TEXT``, ``AUDIO``, ``IMAGE``, ``VIDEO``, ``DOCUMENT`` …)."""

    modality: str | None = None
    token_count: int | None = None


@attrs.frozen(kw_only=True)
class UsageMetadata:
    """Token accounting. The Gemini API says ``response*``, Vertex ``candidates*``: both are kept."""

    prompt_token_count: int | None = None
    cached_content_token_count: int | None = None
    response_token_count: int | None = None
    candidates_token_count: int | None = None
    tool_use_prompt_token_count: int | None = None
    thoughts_token_count: int | None = None
    total_token_count: int | None = None
    prompt_tokens_details: tuple[ModalityTokenCount, ...] | None = None
    cache_tokens_details: tuple[ModalityTokenCount, ...] | None = None
    response_tokens_details: tuple[ModalityTokenCount, ...] | None = None
    candidates_tokens_details: tuple[ModalityTokenCount, ...] | None = None
    tool_use_prompt_tokens_details: tuple[ModalityTokenCount, ...] | None = None
    traffic_type: str | None = None
    service_tier: str | None = None

    @property
    def response_tokens(self) -> int | None:
        """Response tokens under either backend's name."""
        if self.response_token_count is not None:
            return self.response_token_count
        return self.candidates_token_count


@attrs.frozen(kw_only=True)
class VoiceConsentSignature:
    """Consent for a replicated voice."""

    signature: str | None = None


@attrs.frozen(kw_only=True)
class SetupComplete:
    """The reply to ``setup``; the first frame of a healthy connection."""

    #: A UUID on Vertex; absent on the Gemini API.
    session_id: str | None = None
    voice_consent_signature: VoiceConsentSignature | None = None
    usage_metadata: UsageMetadata | None = None


@attrs.frozen(kw_only=True)
class WordInfo:
    """One word of a transcription with its timing."""

    word: str | None = None
    start_offset: Duration | None = None
    end_offset: Duration | None = None


@attrs.frozen(kw_only=True)
class Transcription:
    """Input or output transcription; every field is optional (``{}`` is seen on Vertex)."""

    text: str | None = None
    finished: bool | None = None
    language_code: str | None = None
    speaker_label: str | None = None
    words: tuple[WordInfo, ...] | None = None
    start_offset: Duration | None = None
    end_offset: Duration | None = None


@attrs.frozen(kw_only=True)
class UrlMetadata:
    """One URL the url-context tool retrieved."""

    retrieved_url: str | None = None
    #: e.g. ``URL_RETRIEVAL_STATUS_SUCCESS``.
    url_retrieval_status: str | None = None


@attrs.frozen(kw_only=True)
class UrlContextMetadata:
    """What the url-context tool retrieved for this turn."""

    url_metadata: tuple[UrlMetadata, ...] | None = None


@attrs.frozen(kw_only=True)
class ServerContent:
    """Model output and turn lifecycle. Several fields may come in one frame (Gemini 3.x bundles them)."""

    model_turn: Content | None = None
    #: The model finished its turn; generation restarts only on new client input.
    turn_complete: bool | None = None
    #: Client input interrupted generation: stop playback.
    interrupted: bool | None = None
    #: Generation is done (``turnComplete`` may follow after playback time).
    generation_complete: bool | None = None
    grounding_metadata: JsonObject | None = None
    input_transcription: Transcription | None = None
    output_transcription: Transcription | None = None
    interim_input_transcription: Transcription | None = None
    url_context_metadata: UrlContextMetadata | None = None
    waiting_for_input: bool | None = None
    #: e.g. ``NEED_MORE_INPUT``, ``GENERATED_AUDIO_SAFETY``; new values decode as they are.
    turn_complete_reason: str | None = None
    #: ``IN_PROGRESS`` / ``IDLE`` …; sent alongside ``turnComplete``.
    interaction_status: str | None = None
    usage_metadata: UsageMetadata | None = None


@attrs.frozen(kw_only=True)
class ToolCall:
    """Functions the client must run and answer with a ``ToolResponse``."""

    function_calls: tuple[FunctionCall, ...] | None = None
    usage_metadata: UsageMetadata | None = None


@attrs.frozen(kw_only=True)
class ToolCallCancellation:
    """Earlier calls the client should cancel (only when the client interrupted the turn)."""

    ids: tuple[str, ...] | None = None
    usage_metadata: UsageMetadata | None = None


@attrs.frozen(kw_only=True)
class GoAway:
    """This connection ends soon; resume on a new one before ``time_left`` runs out."""

    #: Time until the server aborts the connection; absent means unknown (treated as now).
    time_left: Duration | None = None
    usage_metadata: UsageMetadata | None = None


@attrs.frozen(kw_only=True)
class SessionResumptionUpdate:
    """New resumption state. A handle is usable only when ``resumable`` is true and it is non-empty."""

    #: A secret: never shown in a repr.
    new_handle: str | None = attrs.field(default=None, repr=False)
    resumable: bool | None = None
    #: Vertex with ``transparent``: the last client message index (on this connection) in the handle's state.
    last_consumed_client_message_index: MessageIndex | None = None
    usage_metadata: UsageMetadata | None = None


@attrs.frozen(kw_only=True)
class VoiceActivityDetectionSignal:
    """Explicit VAD signal (allowlisted)."""

    #: ``VAD_SIGNAL_TYPE_SOS`` / ``VAD_SIGNAL_TYPE_EOS`` …
    vad_signal_type: str | None = None
    usage_metadata: UsageMetadata | None = None


@attrs.frozen(kw_only=True)
class VoiceActivity:
    """Voice activity start or end; the wire key of the kind is ``type``."""

    #: ``ACTIVITY_START`` / ``ACTIVITY_END`` …
    type: str | None = None
    audio_offset: Duration | None = None
    usage_metadata: UsageMetadata | None = None


@attrs.frozen(kw_only=True)
class UsageReport:
    """A frame that carries only ``usageMetadata``."""

    usage_metadata: UsageMetadata


@attrs.frozen(kw_only=True)
class ServerError:
    """An in-band ``{"error": {...}}`` frame (a google.rpc.Status)."""

    code: int | None = None
    message: str | None = None
    status: str | None = None
    details: tuple[JsonObject, ...] | None = None
    usage_metadata: UsageMetadata | None = None


@attrs.frozen(kw_only=True)
class UnknownMessage:
    """A frame whose only keys livestate does not know; reported, not fatal."""

    #: The unknown top-level keys, in frame order.
    keys: tuple[str, ...]
    #: The whole frame as parsed.
    raw: dict[str, Any] = attrs.field(eq=True, repr=False)


ServerMessage = (
    SetupComplete
    | ServerContent
    | ToolCall
    | ToolCallCancellation
    | GoAway
    | SessionResumptionUpdate
    | VoiceActivityDetectionSignal
    | VoiceActivity
    | UsageReport
    | ServerError
    | UnknownMessage
)
