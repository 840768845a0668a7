"""LiveKit Agents' real Gemini RealtimeSession on livestate (no room, server or worker), against FakeLiveServer
over TLS on loopback, on both backends: the Gemini API (handle-only) and Vertex AI (transparent; a project and
a ready OAuth token stand in for Google credentials, so nothing is fetched)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any

import pytest
from google.genai import types

from livestate import commands
from livestate.integrations.livekit import RealtimeModel
from livestate.testing.server import FakeLiveServer, FaultPlan
from livestate.testing.tls import loopback_contexts

from integration_support import FAST, assert_fired, duplicated, http_options, lost, most_copies, plans

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

MODEL = "gemini-2.5-flash-native-audio-preview-12-2025"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    return loopback_contexts(tmp_path_factory.mktemp("tls"))


async def until(condition: Callable[[], bool], what: str, *, tries: int = 500) -> None:
    for _ in range(tries):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def open_session(
    server: FakeLiveServer,
    client_ssl: ssl.SSLContext,
    notices: list[Any],
    *,
    vertex: bool = False,
    options: Any = None,
) -> Any:
    auth: dict[str, Any] = {"api_key": "test-key"}
    if vertex:
        from google.oauth2.credentials import Credentials

        auth = {
            "vertexai": True,
            "project": "test",
            "location": "us-central1",
            "credentials": Credentials("t"),
        }
    model = RealtimeModel(
        model=MODEL, http_options=http_options(server, client_ssl), livestate_options=options or FAST, **auth
    )
    sess = model.session()
    original = sess._client.on_notice

    async def record(session: Any, notice: Any) -> None:
        notices.append(notice)
        await original(session, notice)

    sess._client.on_notice = record
    return sess


async def say(sess: Any, first: int, last: int) -> list[str]:
    """Text through LiveKit's own send queue (the one push_audio and generate_reply use)."""
    sent = []
    for i in range(first, last):
        tag = f"m{i}" + ("?" if i % 10 == 9 else "")
        sent.append(tag)
        sess._send_client_event(types.LiveClientRealtimeInput(text=tag))
        await asyncio.sleep(0.004)
    return sent


async def finish(sess: Any) -> None:
    await until(lambda: sess._msg_ch.empty() and sess._active_session is not None, "LiveKit's queue sent")
    await sess._active_session.live.drain(5)
    await sess.aclose()


@pytest.mark.parametrize("vertex", [True, False], ids=["vertex-transparent", "gemini-handle-only"])
@pytest.mark.parametrize("fault", ["goaway", "drop", "both", "rejected"])
def test_livekit_loses_nothing(fault: str, vertex: bool, tls: Any) -> None:
    server_ssl, client_ssl = tls
    notices: list[Any] = []
    transparent: list[bool] = []
    chat = llm_chat()

    async def main() -> tuple[list[str], FakeLiveServer]:
        async with FakeLiveServer(plans("m25")[fault], vertex=vertex, ssl=server_ssl) as server:
            sess = open_session(server, client_ssl, notices, vertex=vertex)
            await sess.update_chat_ctx(chat)
            await until(lambda: sess._active_session is not None, "a session")
            transparent.append(sess._active_session.live.config.transparent)
            sent = await say(sess, 0, 60)
            await finish(sess)
            return sent, server

    sent, server = asyncio.run(asyncio.wait_for(main(), 60))
    assert_fired(server, fault)
    assert lost(server, sent) == []
    assert most_copies(server, sent) <= 2
    if vertex:  # transparent: exactly once
        assert duplicated(server, sent) == []
        assert transparent == [True]
    resumed = [n for n in notices if isinstance(n, commands.Resumed)]
    assert resumed
    if fault == "rejected":
        assert [r.state_restored for r in resumed] == [False]
        assert any("remember me" in tag for tag in server.sessions[1].conversation)  # re-seeded
    else:
        assert all(r.state_restored for r in resumed)
        assert len(server.sessions) == 1


def llm_chat() -> Any:
    from livekit.agents import llm

    chat = llm.ChatContext.empty()
    chat.add_message(role="user", content="remember me")
    return chat


def test_livekit_restart_resumes_the_same_server_session(tls: Any) -> None:
    """New tools make LiveKit restart its session: it resumes, keeps its queue, and re-sends no history."""
    server_ssl, client_ssl = tls
    notices: list[Any] = []

    async def main() -> tuple[list[str], FakeLiveServer, Any]:
        async with FakeLiveServer(FaultPlan(), ssl=server_ssl) as server:
            sess = open_session(server, client_ssl, notices)
            await sess.update_chat_ctx(llm_chat())
            await until(lambda: sess._active_session is not None, "a session")
            sent = await say(sess, 0, 20)
            await until(lambda: sess._active_session.live.session.has_handle, "a handle")
            first = sess._active_session
            sess._mark_restart_needed()  # what update_tools / update_options do
            sent += await say(sess, 20, 40)
            await until(
                lambda: sess._active_session is not None and sess._active_session is not first, "the restart"
            )
            await finish(sess)
            return sent, server, sess

    sent, server, sess = asyncio.run(asyncio.wait_for(main(), 60))
    assert sess._client.connects == 2
    (session,) = server.sessions
    assert session.connections == 2
    assert lost(server, sent) == []
    assert sum("remember me" in tag for tag in session.conversation) <= 2  # no re-seed beyond a guard replay


def test_livekit_hears_of_handed_back_input_as_an_error_event(tls: Any) -> None:
    """With replay into a fresh session turned off, the input a rejected resume leaves behind is handed back:
    LiveKit emits a recoverable ``error`` event saying so."""
    server_ssl, client_ssl = tls
    notices: list[Any] = []
    errors: list[Any] = []

    async def main() -> None:
        async with FakeLiveServer(plans("m25")["rejected"], ssl=server_ssl) as server:
            options = {**FAST, "replay_after_fresh_session": False}
            sess = open_session(server, client_ssl, notices, options=options)
            sess.on("error", errors.append)
            await until(lambda: sess._active_session is not None, "a session")
            await say(sess, 0, 40)
            await finish(sess)

    asyncio.run(asyncio.wait_for(main(), 60))
    assert any(isinstance(n, (commands.MessagesDropped, commands.MessagesUnconfirmed)) for n in notices)
    assert any("livestate" in str(e.error) and e.recoverable for e in errors)
