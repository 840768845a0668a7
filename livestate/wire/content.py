"""Content shared by both directions: parts, blobs, function calls and responses.

Every class is frozen, slotted and keyword-only. Python names are snake_case; the codec maps them to the
camelCase wire names. Every field is optional (``None`` = absent on the wire), as in proto3 JSON, so a frame
round-trips exactly. Enum-like fields are plain strings: the service keeps adding values.
"""

from __future__ import annotations

import attrs

from livestate.wire.scalars import JsonObject, b64_bytes

__all__ = [
    "Blob",
    "CodeExecutionResult",
    "Content",
    "ExecutableCode",
    "FileData",
    "FunctionCall",
    "FunctionResponse",
    "Part",
    "PartialArg",
]


def _base64_repr(data: str | None) -> str:
    return "None" if data is None else f"<{len(data)} base64 chars>"


@attrs.frozen(kw_only=True)
class Blob:
    """Inline media (``inlineData``, ``realtimeInput.audio`` …). ``data`` stays base64 text."""

    #: e.g. ``audio/pcm;rate=24000``.
    mime_type: str | None = None
    #: Base64 text, exactly as on the wire; call :meth:`payload` for bytes.
    data: str | None = attrs.field(default=None, repr=_base64_repr)
    display_name: str | None = None

    def payload(self) -> bytes:
        """The decoded bytes (decoded on each call; nothing is cached)."""
        return b64_bytes(self.data or "")


@attrs.frozen(kw_only=True)
class FileData:
    """A reference to media by URI."""

    mime_type: str | None = None
    file_uri: str | None = None
    display_name: str | None = None


@attrs.frozen(kw_only=True)
class ExecutableCode:
    """Code the model wrote for the code-execution tool."""

    #: e.g. ``PYTHON``.
    language: str | None = None
    code: str | None = None
    id: str | None = None


@attrs.frozen(kw_only=True)
class CodeExecutionResult:
    """The result of running :class:`ExecutableCode`."""

    #: e.g. ``OUTCOME_OK``.
    outcome: str | None = None
    output: str | None = None
    id: str | None = None


@attrs.frozen(kw_only=True)
class PartialArg:
    """A streamed piece of function-call arguments (Vertex only)."""

    json_path: str | None = None
    string_value: str | None = None
    number_value: float | None = None
    bool_value: bool | None = None
    null_value: str | None = None
    will_continue: bool | None = None


@attrs.frozen(kw_only=True)
class FunctionCall:
    """One call the model asks the client to run; answer it with a ``FunctionResponse`` of the same id."""

    #: ``function-call-<digits>`` (Gemini API), a UUID or absent (Vertex).
    id: str | None = None
    name: str | None = None
    args: JsonObject | None = None
    partial_args: tuple[PartialArg, ...] | None = None
    will_continue: bool | None = None


@attrs.frozen(kw_only=True)
class FunctionResponse:
    """The client's answer to a :class:`FunctionCall`."""

    id: str | None = None
    name: str | None = None
    response: JsonObject | None = None
    will_continue: bool | None = None
    #: ``SCHEDULING_UNSPECIFIED | SILENT | WHEN_IDLE | INTERRUPT``.
    scheduling: str | None = None
    parts: tuple[JsonObject, ...] | None = None


@attrs.frozen(kw_only=True)
class Part:
    """One part of a turn: text, media, code, a thought, a function call or response."""

    text: str | None = None
    inline_data: Blob | None = None
    file_data: FileData | None = None
    executable_code: ExecutableCode | None = None
    code_execution_result: CodeExecutionResult | None = None
    function_call: FunctionCall | None = None
    function_response: FunctionResponse | None = None
    thought: bool | None = None
    #: Base64 text.
    thought_signature: str | None = None
    video_metadata: JsonObject | None = None
    media_resolution: JsonObject | None = None
    part_metadata: JsonObject | None = None
    #: Newer part kinds the SDKs know, passed through as objects.
    tool_call: JsonObject | None = None
    tool_response: JsonObject | None = None
    audio_transcription: JsonObject | None = None
    media_processing: JsonObject | None = None
    speech_metadata: JsonObject | None = None
    document_metadata: JsonObject | None = None
    spreadsheet_metadata: JsonObject | None = None
    audio_metadata: JsonObject | None = None


@attrs.frozen(kw_only=True)
class Content:
    """A turn: a role (``user``/``model``; the Gemini API omits it on output) and its parts."""

    role: str | None = None
    parts: tuple[Part, ...] | None = None
