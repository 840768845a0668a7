"""pipecat's real Gemini Live services on livestate, in a transport-less pipeline, against FakeLiveServer over
TLS on loopback: ``GeminiLiveLLMService`` on the Gemini API (an API key; handle-only) and
``GeminiLiveVertexLLMService`` on Vertex AI (transparent: exactly once).

Vertex credentials, offline: pipecat's Vertex service accepts only service-account JSON (or a path, or
application default credentials) and refreshes it in its constructor with google-auth, over the network.
Nothing of pipecat's is replaced for that: each Vertex test makes a throwaway RSA key and a service-account
JSON whose ``token_uri`` is a loopback token endpoint (``integration_support.vertex_service_account``: plain
HTTP on 127.0.0.1, in a thread, since google-auth refreshes synchronously). The endpoint verifies the signed
JWT-bearer assertion with the key's public half and grants a one-hour token; the fake server then checks that
every connection carried ``Authorization: Bearer <that token>``. So pipecat's own credential path (JSON
parsing, signing, refresh, the google-genai Vertex client it builds) runs unchanged."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from pipecat.frames.frames import EndFrame, InputTextRawFrame, LLMContextFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.task import PipelineTask
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.services.llm_service import FunctionCallParams

from livestate import commands
from livestate.integrations.pipecat import GeminiLiveLLMService, GeminiLiveVertexLLMService
from livestate.testing.server import FakeLiveServer, Fault, FaultPlan
from livestate.testing.tls import loopback_contexts

from integration_support import (
    FAST,
    VERTEX_TOKEN,
    TokenEndpoint,
    assert_fired,
    duplicated,
    http_options,
    lost,
    most_copies,
    plans,
    vertex_service_account,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

MODEL = "models/gemini-2.5-flash-native-audio-preview-12-2025"
VERTEX_MODEL = "gemini-2.5-flash-native-audio-preview-12-2025"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    return loopback_contexts(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def service_account() -> Iterator[tuple[str, TokenEndpoint]]:
    with vertex_service_account() as account:
        yield account


class AuthRecordingServer(FakeLiveServer):
    """FakeLiveServer that keeps the ``Authorization`` header of every connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.authorizations: list[str | None] = []

    async def _serve(self, ws: Any) -> None:
        self.authorizations.append(ws.request.headers.get("Authorization"))
        await super()._serve(ws)


async def until(condition: Callable[[], bool], what: str, *, tries: int = 500) -> None:
    """Wait (bounded) for ``condition``; fail naming ``what``."""
    for _ in range(tries):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def service(
    server: FakeLiveServer,
    client_ssl: ssl.SSLContext,
    notices: list[Any],
    *,
    options: Any = None,
    vertex_credentials: str | None = None,
) -> Any:
    """livestate's pipecat service for ``server``: Vertex (pipecat's Vertex arguments: service-account JSON,
    project, location) when ``vertex_credentials`` is given, else the Gemini API with an API key."""
    if vertex_credentials is not None:
        llm: Any = GeminiLiveVertexLLMService(
            credentials=vertex_credentials,
            project_id="test",
            location="us-central1",
            settings=GeminiLiveVertexLLMService.Settings(model=VERTEX_MODEL),
            http_options=http_options(server, client_ssl),
            livestate_options=options or FAST,
        )
    else:
        llm = GeminiLiveLLMService(
            api_key="test-key",
            settings=GeminiLiveLLMService.Settings(model=MODEL),
            http_options=http_options(server, client_ssl),
            livestate_options=options or FAST,
        )
    stand_in = llm._client
    original = stand_in.on_notice

    async def record(session: Any, notice: Any) -> None:
        notices.append(notice)
        assert original is not None
        await original(session, notice)

    stand_in.on_notice = record
    return llm


async def run_pipeline(
    llm: Any,
    context: LLMContext,
    body: Callable[[PipelineTask], Awaitable[list[str]]],
    errors: list[Any] | None = None,
) -> list[str]:
    task = PipelineTask(Pipeline([llm]))
    if errors is not None:

        @task.event_handler("on_pipeline_error")
        async def on_error(task: PipelineTask, frame: Any) -> None:
            errors.append(frame)

    runner = PipelineRunner(handle_sigint=False)
    running = asyncio.ensure_future(runner.run(task))
    try:
        await task.queue_frame(LLMContextFrame(context=context))
        await until(lambda: llm._session is not None and llm._ready_for_realtime_input, "pipecat ready")
        sent = await body(task)
        await until(lambda: llm._session is not None, "a session")
        await llm._session.live.drain(5)  # everything pipecat was given confirmed (or reported unconfirmed)
        await task.queue_frame(EndFrame())
        await asyncio.wait_for(running, 20)
        return sent
    finally:
        if not running.done():
            await task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(running, 5)


async def say(task: PipelineTask, first: int, last: int) -> list[str]:
    sent = []
    for i in range(first, last):
        tag = f"m{i}" + ("?" if i % 10 == 9 else "")
        sent.append(tag)
        await task.queue_frame(InputTextRawFrame(text=tag))
        await asyncio.sleep(0.004)
    return sent


def seeded_context() -> LLMContext:
    return LLMContext(messages=[{"role": "user", "content": "hello"}])


@pytest.mark.parametrize("fault", ["goaway", "drop", "both", "rejected"])
def test_pipecat_loses_nothing(fault: str, tls: Any) -> None:
    server_ssl, client_ssl = tls
    notices: list[Any] = []

    async def main() -> tuple[list[str], FakeLiveServer]:
        async with FakeLiveServer(plans("m25")[fault], ssl=server_ssl) as server:
            llm = service(server, client_ssl, notices)
            sent = await run_pipeline(llm, seeded_context(), lambda task: say(task, 0, 60))
            return sent, server

    sent, server = asyncio.run(asyncio.wait_for(main(), 60))
    assert_fired(server, fault)
    assert lost(server, sent) == []
    # Gemini API (handle-only): a replay may repeat what the guard window kept, never more than that.
    assert most_copies(server, sent) <= 2
    check_resumes(fault, notices, server)


@pytest.mark.parametrize("fault", ["goaway", "drop", "both", "rejected"])
def test_pipecat_vertex_loses_nothing_and_repeats_nothing(
    fault: str, tls: Any, service_account: tuple[str, TokenEndpoint]
) -> None:
    """pipecat's Vertex AI service, with its own service-account credentials (fetched from the loopback token
    endpoint): transparent sessions, so every message is in the conversation exactly once."""
    server_ssl, client_ssl = tls
    credentials, endpoint = service_account
    grants = len(endpoint.grants)
    notices: list[Any] = []
    transparent: list[bool] = []

    async def body(task: PipelineTask, llm: Any) -> list[str]:
        transparent.append(llm._session.live.config.transparent)
        return await say(task, 0, 60)

    async def main() -> tuple[list[str], AuthRecordingServer]:
        async with AuthRecordingServer(plans("m25")[fault], vertex=True, ssl=server_ssl) as server:
            llm = service(server, client_ssl, notices, vertex_credentials=credentials)
            assert llm._client.client.vertexai
            sent = await run_pipeline(llm, seeded_context(), lambda task: body(task, llm))
            return sent, server

    sent, server = asyncio.run(asyncio.wait_for(main(), 60))
    assert len(endpoint.grants) == grants + 1  # pipecat's own refresh, once; the token then lasts
    assert endpoint.refused == []
    assert server.authorizations and set(server.authorizations) == {f"Bearer {VERTEX_TOKEN}"}
    assert transparent == [True]
    assert_fired(server, fault)
    assert lost(server, sent) == []
    assert duplicated(server, sent) == []  # transparent: exactly once
    check_resumes(fault, notices, server, vertex=True)


def check_resumes(fault: str, notices: list[Any], server: FakeLiveServer, *, vertex: bool = False) -> None:
    """Every plan was resumed; a rejected resume's fresh session was re-seeded from pipecat's context and got
    the held input, which waited for the re-seed: on the Gemini API through ``historyConfig``, on Vertex
    (where pipecat sends no ``historyConfig``) through ``SessionConfig.hold_for_reseed``."""
    resumed = [n for n in notices if isinstance(n, commands.Resumed)]
    assert resumed
    if fault == "rejected":
        assert [r.state_restored for r in resumed] == [False]
        fresh = server.sessions[1].conversation
        assert "m25" in fresh
        seeds = [i for i, tag in enumerate(fresh) if "hello" in tag]
        assert seeds and seeds[0] == 0, fresh  # pipecat re-seeded the fresh session before the held input
        if vertex:  # one re-seed, once
            assert len(seeds) == 1, fresh
    else:
        assert all(r.state_restored for r in resumed)
        assert len(server.sessions) == 1


def test_pipecat_tool_call_round_trip_across_a_reconnect(tls: Any) -> None:
    """A goAway while a call is pending: livestate waits for the answer and the turn, then resumes."""
    server_ssl, client_ssl = tls
    notices: list[Any] = []
    calls: list[str] = []
    plan = FaultPlan(faults=(Fault(kind="goaway", on_text="tool:lookup"),), go_away_time_left=2.0)

    async def lookup(params: FunctionCallParams) -> None:
        calls.append(params.tool_call_id)
        await asyncio.sleep(0.2)
        await params.result_callback({"answer": 42})

    async def body(task: PipelineTask) -> list[str]:
        sent = await say(task, 0, 5)
        await task.queue_frame(InputTextRawFrame(text="tool:lookup"))
        await until(lambda: server.connections >= 2, "the resume after the goAway")
        return [*sent, "tool:lookup", *await say(task, 5, 10)]

    async def main() -> tuple[list[str], FakeLiveServer]:
        nonlocal server
        async with FakeLiveServer(plan, ssl=server_ssl) as server:
            llm = service(server, client_ssl, notices)
            llm.register_function("lookup", lookup)
            sent = await run_pipeline(llm, seeded_context(), body)
            return sent, server

    server: Any = None
    sent, server = asyncio.run(asyncio.wait_for(main(), 60))
    assert calls == ["call-tool:lookup-1"]
    (session,) = server.sessions
    assert session.conversation.count("response:call-tool:lookup-1") == 1
    assert session.unknown_tool_responses == []
    assert not any(isinstance(n, commands.ToolCallsOrphaned) for n in notices)
    assert lost(server, sent) == []
    assert session.connections == 2


def test_pipecat_restart_resumes_the_same_server_session(tls: Any) -> None:
    """A context that brings tools makes pipecat reconnect: it resumes, it does not start afresh."""
    server_ssl, client_ssl = tls
    notices: list[Any] = []
    seeds: list[Any] = []

    async def main() -> tuple[list[str], FakeLiveServer, Any]:
        async with FakeLiveServer(FaultPlan(), ssl=server_ssl) as server:
            llm = service(server, client_ssl, notices)
            seed = llm._create_initial_response

            async def counted(*args: Any, **kwargs: Any) -> None:
                if llm._session is not None:  # without a session pipecat only defers the seed
                    seeds.append(kwargs)
                await seed(*args, **kwargs)

            llm._create_initial_response = counted

            async def body(task: PipelineTask) -> list[str]:
                sent = await say(task, 0, 20)
                await until(lambda: llm._session.live.session.has_handle, "a handle")
                await llm._reconnect()  # what pipecat does when the context changes tools or instruction
                await until(lambda: llm._session is not None and llm._ready_for_realtime_input, "ready again")
                return sent + await say(task, 20, 40)

            sent = await run_pipeline(llm, seeded_context(), body)
            return sent, server, llm

    sent, server, llm = asyncio.run(asyncio.wait_for(main(), 60))
    assert llm._client.connects == 2
    (session,) = server.sessions
    assert session.connections == 2
    assert lost(server, sent) == []
    assert seeds == [{}]  # pipecat seeded once, and did not re-seed the resumed session


def test_pipecat_hears_of_handed_back_input_as_an_error_frame(tls: Any) -> None:
    """With replay into a fresh session turned off, the input a rejected resume leaves behind is handed back:
    pipecat gets a non-fatal ErrorFrame saying so (and its log a warning)."""
    server_ssl, client_ssl = tls
    notices: list[Any] = []
    errors: list[Any] = []

    async def main() -> None:
        async with FakeLiveServer(plans("m25")["rejected"], ssl=server_ssl) as server:
            llm = service(server, client_ssl, notices, options={**FAST, "replay_after_fresh_session": False})
            await run_pipeline(llm, seeded_context(), lambda task: say(task, 0, 40), errors)

    asyncio.run(asyncio.wait_for(main(), 60))
    handed = [n for n in notices if isinstance(n, (commands.MessagesDropped, commands.MessagesUnconfirmed))]
    assert handed
    assert any("livestate" in frame.error and not frame.fatal for frame in errors)
