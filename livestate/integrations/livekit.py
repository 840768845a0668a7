"""LiveKit Agents' Gemini realtime model on livestate sessions: nothing the user says is lost around reconnects.

``RealtimeModel`` below is LiveKit's own (``livekit.plugins.google.realtime.RealtimeModel``) whose
``session()`` factory builds a ``RealtimeSession`` that swaps its google-genai client, created in
``__init__`` before its main task first runs, for a :class:`~livestate.integrations.genai_client.LiveClient`:

- goAway and resumption updates never reach LiveKit: livestate resumes at a turn boundary before the
  deadline instead of LiveKit's immediate restart that cut the reply, and replays what was not confirmed;
- LiveKit's own restarts (new tools, instructions, voice …) resume the same server session with livestate's
  handle, send only the chat context that was not sent yet, and keep the queued input instead of dropping it;
- when a resume is rejected and a fresh session starts, the chat context is re-seeded (as LiveKit seeds a
  new session: its turns in one ``clientContent``), and livestate sends the held input after it;
- livestate's notices go to LiveKit's plugin logger; handed-back input and orphaned tool calls are also
  emitted as recoverable ``error`` events, and a failed session surfaces as the SDK error LiveKit handles.

Requires ``livekit-agents`` and ``livekit-plugins-google`` (the ``livekit`` extra).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from google.genai import types
from livekit.agents import llm
from livekit.plugins.google.log import logger
from livekit.plugins.google.realtime import realtime_api

from livestate import commands as c
from livestate.integrations.genai_client import LiveClient, LiveSession

__all__ = ["RealtimeModel", "RealtimeSession"]

#: What LiveKit is shown as its "resumption handle" once livestate carries the session: LiveKit only tests
#: it against ``None`` (to send the chat context diff instead of the whole context); livestate holds the real
#: handle.
_CARRIED = "livestate"


class RealtimeModel(realtime_api.RealtimeModel):  # type: ignore[misc]
    """LiveKit's Gemini ``RealtimeModel``, whose sessions are kept alive by livestate. Takes LiveKit's
    arguments, plus ``livestate_options``: :class:`~livestate.SessionConfig` fields for every session."""

    def __init__(self, *, livestate_options: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        self.livestate_options = dict(livestate_options or {})
        super().__init__(**kwargs)

    def session(self, *, turn_detection_disabled: bool = False) -> RealtimeSession:
        """A new :class:`RealtimeSession` (LiveKit's factory, overridden)."""
        sess = RealtimeSession(self)
        self._sessions.add(sess)
        return sess


class RealtimeSession(realtime_api.RealtimeSession):  # type: ignore[misc]
    """LiveKit's Gemini ``RealtimeSession`` on the livestate stand-in client (``self._client``)."""

    def __init__(self, realtime_model: RealtimeModel) -> None:
        super().__init__(realtime_model)
        # The main task was created but has not run yet: it will connect through the stand-in.
        real: Any = self._client
        self._client: LiveClient = LiveClient(
            real, options=realtime_model.livestate_options, on_notice=self._on_livestate_notice
        )

    def _build_connect_config(self) -> types.LiveConnectConfig:
        if self._client.has_parked:
            # A restart of a session livestate carries: it resumes, so LiveKit must only send what the server
            # has not seen (everything already handed to the stand-in is buffered and replayed by livestate).
            self._session_resumption_handle: str | None = _CARRIED
            self._resumption_chat_ctx = llm.ChatContext(
                [item for item in self._chat_ctx.items if item.id not in self._unsent_item_ids]
            )
        else:
            self._session_resumption_handle = None
            self._resumption_chat_ctx = None
        config: types.LiveConnectConfig = super()._build_connect_config()
        return config

    def _mark_restart_needed(self, on_error: bool = False) -> None:
        # LiveKit replaces its send channel on a restart and drops what was queued in it; keep the queue.
        if self._session_should_close.is_set():
            return
        queued = []
        while not self._msg_ch.empty():
            queued.append(self._msg_ch.recv_nowait())
        super()._mark_restart_needed(on_error=True)
        for message in queued:
            self._msg_ch.send_nowait(message)

    async def _on_livestate_notice(self, session: LiveSession, notice: c.Notice) -> None:
        """Log every notice; re-seed a fresh session from the chat context; report lost input as events."""
        if isinstance(notice, c.Resumed):
            logger.info("livestate resumed (state restored: %s)", notice.state_restored)
            if not notice.state_restored:
                await self._reseed(session)
        elif isinstance(notice, (c.MessagesDropped, c.MessagesUnconfirmed, c.ToolCallsOrphaned)):
            logger.warning("livestate: %r", notice)
            self._emit_livestate_error(notice)
        elif isinstance(notice, c.SessionFailed):
            logger.error("livestate session failed: %s", notice.reason)
        elif isinstance(notice, c.TurnAborted):
            logger.info("livestate: a reconnect cut the model's turn")
        else:
            logger.debug("livestate: %r", notice)

    async def _reseed(self, session: LiveSession) -> None:
        """Send the chat context to a fresh session, as LiveKit seeds a new one (turns, no turn complete)."""
        turns_dict, _ = self._chat_ctx.copy(
            exclude_function_call=True,
            exclude_handoff=True,
            exclude_instructions=True,
            exclude_empty_message=True,
            exclude_config_update=True,
        ).to_provider_format(format="google", inject_dummy_user_message=False)
        turns = [types.Content.model_validate(turn) for turn in turns_dict]
        if turns:
            await session.send_client_content(turns=turns, turn_complete=False)

    def _emit_livestate_error(self, notice: c.Notice) -> None:
        self.emit(
            "error",
            llm.RealtimeModelError(
                timestamp=time.time(),
                label=self._realtime_model._label,
                error=RuntimeError(f"livestate: {notice!r}"),
                recoverable=True,
            ),
        )
