"""Client → server messages (``BidiGenerateContentClientMessage``).

``Setup`` types what the session lifecycle needs (model, resumption, compression, VAD, history,
transcription); every other setup field travels untouched in ``extra``, so any configuration can be sent.
"""

from __future__ import annotations

import attrs

from livestate.wire.content import Blob, Content, FunctionResponse
from livestate.wire.scalars import Int64, JsonObject

__all__ = [
    "ActivityEnd",
    "ActivityStart",
    "AudioTranscriptionConfig",
    "AutomaticActivityDetection",
    "ClientContent",
    "ClientMessage",
    "ContextWindowCompression",
    "HistoryConfig",
    "RealtimeInput",
    "RealtimeInputConfig",
    "SessionResumptionConfig",
    "Setup",
    "SlidingWindow",
    "ToolResponse",
]


@attrs.frozen(kw_only=True)
class SessionResumptionConfig:
    """``setup.sessionResumption``: ``{}`` starts a resumable session, ``handle`` resumes one."""

    #: A secret: never shown in a repr.
    handle: str | None = attrs.field(default=None, repr=False)
    #: Vertex only: ask for ``lastConsumedClientMessageIndex`` in every update.
    transparent: bool | None = None


@attrs.frozen(kw_only=True)
class SlidingWindow:
    """Compression by dropping the oldest turns down to ``target_tokens``."""

    target_tokens: Int64 | None = None


@attrs.frozen(kw_only=True)
class ContextWindowCompression:
    """``setup.contextWindowCompression``: lifts the session length caps."""

    trigger_tokens: Int64 | None = None
    sliding_window: SlidingWindow | None = None


@attrs.frozen(kw_only=True)
class AutomaticActivityDetection:
    """Server-side VAD settings."""

    disabled: bool | None = None
    start_of_speech_sensitivity: str | None = None
    end_of_speech_sensitivity: str | None = None
    prefix_padding_ms: int | None = None
    silence_duration_ms: int | None = None


@attrs.frozen(kw_only=True)
class RealtimeInputConfig:
    """``setup.realtimeInputConfig``."""

    automatic_activity_detection: AutomaticActivityDetection | None = None
    #: ``START_OF_ACTIVITY_INTERRUPTS`` (barge-in) or ``NO_INTERRUPTION``.
    activity_handling: str | None = None
    turn_coverage: str | None = None
    interim_transcript_timestamp_enabled: bool | None = None


@attrs.frozen(kw_only=True)
class HistoryConfig:
    """``setup.historyConfig``: seed a fresh session with ``clientContent`` before the first model call."""

    initial_history_in_client_content: bool | None = None


@attrs.frozen(kw_only=True)
class AudioTranscriptionConfig:
    """``setup.inputAudioTranscription`` / ``outputAudioTranscription`` (``{}`` turns it on)."""

    language_codes: tuple[str, ...] | None = None


@attrs.frozen(kw_only=True)
class Setup:
    """The first message of every connection."""

    #: ``models/{m}`` (Gemini API) or ``projects/{p}/locations/{l}/publishers/google/models/{m}`` (Vertex).
    model: str
    session_resumption: SessionResumptionConfig | None = None
    context_window_compression: ContextWindowCompression | None = None
    realtime_input_config: RealtimeInputConfig | None = None
    history_config: HistoryConfig | None = None
    input_audio_transcription: AudioTranscriptionConfig | None = None
    output_audio_transcription: AudioTranscriptionConfig | None = None
    #: Every other setup field (``generationConfig``, ``systemInstruction``, ``tools`` …), sent as given.
    extra: JsonObject = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class ClientContent:
    """Turns appended to the conversation; ``turn_complete`` asks the model to answer."""

    turns: tuple[Content, ...] | None = None
    turn_complete: bool | None = None


@attrs.frozen(kw_only=True)
class ActivityStart:
    """Marks the start of user activity (manual VAD)."""


@attrs.frozen(kw_only=True)
class ActivityEnd:
    """Marks the end of user activity (manual VAD)."""


@attrs.frozen(kw_only=True)
class RealtimeInput:
    """Streaming input: audio, video, text, and activity markers."""

    audio: Blob | None = None
    video: Blob | None = None
    text: str | None = None
    audio_stream_end: bool | None = None
    activity_start: ActivityStart | None = None
    activity_end: ActivityEnd | None = None
    #: Deprecated by the service; still accepted.
    media_chunks: tuple[Blob, ...] | None = None


@attrs.frozen(kw_only=True)
class ToolResponse:
    """Answers to the model's function calls, matched by id."""

    function_responses: tuple[FunctionResponse, ...] | None = None


ClientMessage = Setup | ClientContent | RealtimeInput | ToolResponse
