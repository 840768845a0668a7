"""pipecat's Gemini Live service on a livestate session: nothing the user says is lost around reconnects.

``GeminiLiveLLMService`` below is pipecat's own service with one change of client: ``create_client()`` (the
override point pipecat documents) builds a :class:`~livestate.integrations.genai_client.LiveClient`.
``GeminiLiveVertexLLMService`` is the same change on pipecat's Vertex AI service (its credentials, project and
location, unchanged: pipecat builds the Vertex client and fetches its token as it always does; livestate
then runs transparent sessions, replaying exactly once). So:

- goAway and resumption updates never reach pipecat: livestate resumes at a turn boundary before the
  deadline, and replays (Vertex: exactly once; Gemini API: within the guard window) what was not confirmed;
- while livestate reconnects, audio, text, video and tool results are buffered, not discarded;
- pipecat's own reconnects (a context bringing tools or a system instruction) resume the same server session
  with livestate's handle instead of starting a new one;
- when a resume is rejected and a fresh session starts, pipecat re-seeds it from its context (its own
  ``_create_initial_response(for_reconnect=True)``), and livestate sends the held input after the re-seed;
- livestate's notices go to pipecat's logger; lost-or-handed-back input is also pushed as a non-fatal
  ``ErrorFrame``, and a session that failed surfaces as the SDK error pipecat already handles.

Requires ``pipecat-ai[google]`` (the ``pipecat`` extra).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loguru import logger
from pipecat.services.google.gemini_live.llm import GeminiLiveLLMService as _StockService
from pipecat.services.google.gemini_live.vertex.llm import (
    GeminiLiveVertexLLMService as _StockVertexService,
)

from livestate import commands as c
from livestate.integrations.genai_client import LiveClient, LiveSession

__all__ = ["GeminiLiveLLMService", "GeminiLiveVertexLLMService"]

#: What pipecat is shown as its "resumption handle" once livestate carries the session: pipecat only tests
#: it for truth (to skip its own re-seed on a reconnect); livestate holds the real handle.
_CARRIED = "livestate"


class GeminiLiveLLMService(_StockService):  # type: ignore[misc]
    """pipecat's ``GeminiLiveLLMService``, kept alive by livestate. Takes pipecat's arguments, plus
    ``livestate_options``: :class:`~livestate.SessionConfig` fields (timings, budgets …) for every session.

    The stand-in client is ``self._client``; ``self._client.connects`` counts pipecat's connects."""

    def __init__(self, *, livestate_options: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        self._livestate_options = dict(livestate_options or {})
        super().__init__(**kwargs)

    def create_client(self) -> None:
        """pipecat's documented override point: the real client, wrapped in livestate's stand-in."""
        super().create_client()
        real: Any = self._client
        self._client: LiveClient = LiveClient(
            real, options=self._livestate_options, on_notice=self._on_livestate_notice
        )

    async def _handle_session_ready(self, session: Any) -> None:
        # A session that continues a parked livestate session needs no re-seed from pipecat (livestate resumes
        # it, or reports a fresh one, which _on_livestate_notice re-seeds).
        continued = isinstance(session, LiveSession) and session.continued
        self._session_resumption_handle = _CARRIED if continued else None
        await super()._handle_session_ready(session)

    async def _on_livestate_notice(self, session: LiveSession, notice: c.Notice) -> None:
        """Log every notice; re-seed a fresh session from pipecat's context; report lost input upstream."""
        if isinstance(notice, c.Resumed):
            logger.info(f"{self}: livestate resumed (state restored: {notice.state_restored})")
            if not notice.state_restored and self._context is not None and self._session is session:
                await self._create_initial_response(for_reconnect=True)
        elif isinstance(notice, (c.MessagesDropped, c.MessagesUnconfirmed)):
            logger.warning(f"{self}: livestate handed back {notice.count} messages: {notice.reason}")
            await self.push_error(
                error_msg=f"livestate: {notice.count} messages not delivered: {notice.reason}"
            )
        elif isinstance(notice, c.ToolCallsOrphaned):
            logger.warning(f"{self}: livestate: tool calls orphaned by a resume: {notice.ids}")
            await self.push_error(error_msg=f"livestate: tool calls orphaned by a resume: {notice.ids}")
        elif isinstance(notice, c.SessionFailed):
            logger.error(f"{self}: livestate session failed: {notice.reason}")
        elif isinstance(notice, c.TurnAborted):
            logger.info(f"{self}: livestate: a reconnect cut the model's turn")
        else:
            logger.debug(f"{self}: livestate: {notice!r}")


class GeminiLiveVertexLLMService(GeminiLiveLLMService, _StockVertexService):  # type: ignore[misc]
    """pipecat's ``GeminiLiveVertexLLMService``, kept alive by livestate. Takes pipecat's arguments
    (``credentials`` or ``credentials_path`` or application default credentials, ``project_id``,
    ``location`` …), plus ``livestate_options`` as :class:`GeminiLiveLLMService`.

    pipecat's ``create_client()`` builds the Vertex client (``GeminiLiveLLMService.create_client`` wraps
    whatever the next class in the MRO builds); the stand-in then defaults to ``Backend.VERTEX`` with
    ``transparent=True``."""

    Settings = _StockVertexService.Settings
