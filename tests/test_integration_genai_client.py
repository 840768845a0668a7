"""The google-genai stand-in (livestate.integrations.genai_client) through the real SDK, over TLS on loopback."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import pytest
from google.genai import errors, types

from livestate import commands, wire
from livestate.drivers.genai import live_connect_config
from livestate.integrations.genai_client import LiveClient, LiveSession, setup_from_sdk
from livestate.testing.server import FakeLiveServer, FaultPlan
from livestate.testing.tls import loopback_contexts

from integration_support import FAST, assert_fired, duplicated, lost, plans, sdk_client

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

MODEL = "gemini-live-2.5-flash"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    return loopback_contexts(tmp_path_factory.mktemp("tls"))


RICH = types.LiveConnectConfig(
    response_modalities=[types.Modality.AUDIO],
    temperature=0.3,
    speech_config=types.SpeechConfig(
        voice_config=types.VoiceConfig(prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name="Puck"))
    ),
    system_instruction="be brief",
    tools=[types.Tool(function_declarations=[types.FunctionDeclaration(name="lookup", description="d")])],
    input_audio_transcription=types.AudioTranscriptionConfig(),
    realtime_input_config=types.RealtimeInputConfig(
        automatic_activity_detection=types.AutomaticActivityDetection(disabled=True)
    ),
    context_window_compression=types.ContextWindowCompressionConfig(sliding_window=types.SlidingWindow()),
    proactivity=types.ProactivityConfig(proactive_audio=True),
    session_resumption=types.SessionResumptionConfig(handle="framework-handle"),
)


@pytest.mark.parametrize("vertex", [False, True], ids=["gemini", "vertex"])
def test_every_config_field_reaches_the_setup_and_back(vertex: bool) -> None:
    """SDK config → livestate Setup → the driver's SDK config → Setup again: nothing lost on the way; the
    framework's own sessionResumption is dropped (livestate owns it)."""
    from google import genai

    client = genai.Client(vertexai=True, api_key="k") if vertex else genai.Client(api_key="k")

    async def main() -> tuple[wire.Setup, wire.Setup]:
        setup = await setup_from_sdk(client, MODEL, RICH.model_copy(deep=True))
        again = await setup_from_sdk(client, setup.model, live_connect_config(setup))
        return setup, again

    setup, again = asyncio.run(main())
    assert setup.session_resumption is None
    encoded = wire.encode(setup)
    for needle in ("be brief", "lookup", "Puck", "proactive", "slidingWindow", "temperature"):
        assert needle in encoded
    assert setup.realtime_input_config is not None and setup.input_audio_transcription is not None
    assert camel(wire.codec.unstructure(again)) == camel(wire.codec.unstructure(setup))


def camel(value: Any) -> Any:
    """Keys in camelCase at every level (proto3 JSON accepts both spellings; the SDK sends a mix)."""
    if isinstance(value, dict):
        return {wire.codec.to_camel(k): camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel(v) for v in value]
    return value


async def _talk(
    server: FakeLiveServer, client_ssl: ssl.SSLContext, *, vertex: bool, count: int, restart_at: int | None
) -> tuple[list[str], list[Any], LiveClient]:
    notices: list[Any] = []
    client = LiveClient(
        sdk_client(server, client_ssl, vertex=vertex),
        options=FAST,
        on_notice=lambda session, notice: notices.append(notice),
    )
    sent: list[str] = []
    received: list[types.LiveServerMessage] = []

    async def read(session: LiveSession) -> None:
        while True:
            async for message in session.receive():
                received.append(message)

    async def run(first: int, last: int) -> None:
        async with client.aio.live.connect(model=MODEL, config=RICH.model_copy(deep=True)) as session:
            reader = asyncio.ensure_future(read(session))
            for i in range(first, last):
                tag = f"m{i}" + ("?" if i % 10 == 9 else "")
                sent.append(tag)
                await session.send_realtime_input(text=tag)
                await asyncio.sleep(0.004)
            if last == count:
                await session.live.drain(5)
            reader.cancel()
            with __import__("contextlib").suppress(BaseException):
                await reader

    if restart_at is None:
        await run(0, count)
    else:  # a framework-initiated reconnect: close, then connect again with new options
        await run(0, restart_at)
        await run(restart_at, count)
    notices.extend(m for m in received if m.go_away or m.session_resumption_update)
    return sent, notices, client


@pytest.mark.parametrize("vertex", [True, False], ids=["vertex-transparent", "gemini-handle-only"])
@pytest.mark.parametrize("fault", ["goaway", "drop", "both", "rejected"])
def test_the_stand_in_loses_nothing(vertex: bool, fault: str, tls: Any) -> None:
    server_ssl, client_ssl = tls

    async def main() -> tuple[list[str], list[Any], FakeLiveServer]:
        async with FakeLiveServer(plans("m25")[fault], vertex=vertex, ssl=server_ssl) as server:
            sent, notices, _ = await _talk(server, client_ssl, vertex=vertex, count=60, restart_at=None)
            return sent, notices, server

    sent, notices, server = asyncio.run(asyncio.wait_for(main(), 60))
    assert_fired(server, fault)
    assert lost(server, sent) == []
    if vertex and fault != "rejected":
        assert duplicated(server, sent) == []
    resumed = [n for n in notices if isinstance(n, commands.Resumed)]
    assert resumed
    assert not any(isinstance(n, types.LiveServerMessage) for n in notices)  # goAway/updates never leak
    if fault == "rejected":
        assert [r.state_restored for r in resumed] == [False]
        assert len(server.sessions) == 2
    else:
        assert all(r.state_restored for r in resumed)
        assert len(server.sessions) == 1


def test_a_framework_restart_resumes_the_same_server_session(tls: Any) -> None:
    server_ssl, client_ssl = tls

    async def main() -> tuple[list[str], FakeLiveServer, LiveClient]:
        async with FakeLiveServer(FaultPlan(), ssl=server_ssl) as server:
            sent, _, client = await _talk(server, client_ssl, vertex=False, count=40, restart_at=20)
            return sent, server, client

    sent, server, client = asyncio.run(asyncio.wait_for(main(), 60))
    assert client.connects == 2
    assert len(server.sessions) == 1 and server.sessions[0].connections == 2
    assert lost(server, sent) == []


def test_a_failed_session_raises_the_sdk_error(tls: Any, tmp_path: Path) -> None:
    server_ssl, _ = tls

    async def main() -> str:
        async with FakeLiveServer(ssl=server_ssl) as server:
            untrusting = ssl.create_default_context()
            client = LiveClient(
                sdk_client(server, untrusting, vertex=False), options={"max_attempts_per_outage": 2}
            )
            try:
                async with client.aio.live.connect(model=MODEL, config=types.LiveConnectConfig()):
                    return "connected"
            except errors.APIError as exc:
                return str(exc)

    assert "livestate: the session failed" in asyncio.run(asyncio.wait_for(main(), 30))
