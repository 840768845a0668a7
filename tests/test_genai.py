"""The google-genai adapter, through the real SDK, against FakeLiveServer over TLS on loopback."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import pytest

genai = pytest.importorskip("google.genai")

from google.genai import types  # noqa: E402

from livestate import Backend, SessionConfig, commands, wire  # noqa: E402
from livestate.drivers.genai import connect, from_sdk, live_connect_config  # noqa: E402
from livestate.testing.server import FakeLiveServer, Fault, FaultPlan  # noqa: E402
from livestate.testing.tls import loopback_contexts  # noqa: E402

from conftest import load_jsonl  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    return loopback_contexts(tmp_path_factory.mktemp("tls"))


def client_for(url: str, client_ssl: ssl.SSLContext, *, vertex: bool) -> genai.Client:
    base = url.replace("wss://", "https://")
    options = types.HttpOptions(base_url=base, async_client_args={"ssl": client_ssl})
    if vertex:  # Vertex express mode: an API key instead of credentials
        return genai.Client(vertexai=True, api_key="test-key", http_options=options)
    return genai.Client(api_key="test-key", http_options=options)


def config(vertex: bool) -> SessionConfig:
    options: dict[str, Any] = {
        "goaway_margin": 0.05,
        "backoff_initial": 0.02,
        "setup_timeout": 3.0,
        "healthy_after": 0.5,
        "guard_window": 0.1,
        "replay_after_fresh_session": True,
    }
    if vertex:
        options.update(backend=Backend.VERTEX, transparent=True)
    return SessionConfig(setup=wire.Setup(model="gemini-live-2.5-flash"), **options)


async def exchange(
    server: FakeLiveServer, client: genai.Client, cfg: SessionConfig, count: int
) -> tuple[list[str], list[Any]]:
    sent: list[str] = []
    items: list[Any] = []
    async with connect(client, cfg) as live:

        async def read() -> None:
            async for item in live:
                items.append(item)

        reader = asyncio.ensure_future(read())
        for i in range(count):
            tag = f"g{i}" + ("?" if i % 20 == 19 else "")
            sent.append(tag)
            await live.send(wire.RealtimeInput(text=tag))
            await asyncio.sleep(0.005)
        for _ in range(100):
            if not live.session.unconfirmed_count:
                break
            await asyncio.sleep(0.01)
    await asyncio.wait_for(reader, 5)
    return sent, items


PLANS = {
    "goaway": FaultPlan(faults=(Fault(kind="goaway", on_text="g30"),), go_away_time_left=0.3),
    "drop": FaultPlan(faults=(Fault(kind="drop", on_text="g45"),)),
}


@pytest.mark.parametrize("vertex", [True, False], ids=["vertex-transparent", "gemini-handle-only"])
@pytest.mark.parametrize("fault", list(PLANS))
def test_resume_through_the_sdk_loses_nothing(vertex: bool, fault: str, tls: Any) -> None:
    server_ssl, client_ssl = tls

    async def main() -> tuple[list[str], list[Any], FakeLiveServer]:
        async with FakeLiveServer(PLANS[fault], vertex=vertex, ssl=server_ssl) as server:
            client = client_for(server.url, client_ssl, vertex=vertex)
            sent, items = await exchange(server, client, config(vertex), 100)
            return sent, items, server

    sent, items, server = asyncio.run(asyncio.wait_for(main(), 60))
    assert server.faults_done
    resumed = [i for i in items if isinstance(i, commands.Resumed)]
    assert resumed and all(r.state_restored for r in resumed)
    (session,) = server.sessions
    assert set(sent) <= set(session.conversation)
    if vertex:
        assert len(session.conversation) == len(set(session.conversation))
    assert any(isinstance(i, wire.ServerContent) and i.turn_complete for i in items)  # past receive()'s stop
    assert server.connections >= 2


def test_the_sdk_setup_carries_the_handle_and_transparent() -> None:
    setup = SessionConfig(
        setup=wire.Setup(model="m", extra={"generationConfig": {"responseModalities": ["AUDIO"]}}),
        backend=Backend.VERTEX,
        transparent=True,
    ).setup_for("handle-1")
    live_config = live_connect_config(setup)
    assert live_config.session_resumption == types.SessionResumptionConfig(
        handle="handle-1", transparent=True
    )
    assert live_config.generation_config is not None
    assert live_config.generation_config.response_modalities == [types.Modality.AUDIO]


@pytest.mark.parametrize(
    "line",
    [
        x
        for x in load_jsonl("server_valid.jsonl")
        if not x["name"].startswith(("snake", "error", "forward_compat_unknown_top"))
    ],
    ids=lambda x: x["name"],
)
def test_sdk_messages_convert_without_losing_a_field(line: dict[str, Any]) -> None:
    """What the SDK yields for a fixture converts to what livestate decodes from the same frame, up to the
    fields the SDK itself drops or renames (Vertex's candidates* counts, unknown fields)."""
    import json

    from sdk_reference import sdk_parse

    vertex = "vertex" in line["name"]
    sdk_message = sdk_parse(line["frame"], vertex=vertex)
    ours = wire.decode(json.dumps(line["frame"]))
    converted = from_sdk(sdk_message)
    assert type(converted) is type(ours)
    if "candidatesTokenCount" in json.dumps(line["frame"]) or "forward_compat" in line["name"]:
        return
    assert converted == ours


def test_a_rejected_resume_through_the_sdk_starts_fresh(tls: Any) -> None:
    server_ssl, client_ssl = tls
    plan = FaultPlan(
        faults=(Fault(kind="reject_next_resume", on_text="g30"), Fault(kind="drop", on_text="g30"))
    )

    async def main() -> tuple[list[Any], FakeLiveServer]:
        async with FakeLiveServer(plan, vertex=True, ssl=server_ssl) as server:
            client = client_for(server.url, client_ssl, vertex=True)
            _, items = await exchange(server, client, config(True), 60)
            return items, server

    items, server = asyncio.run(asyncio.wait_for(main(), 60))
    assert [r.state_restored for r in items if isinstance(r, commands.Resumed)] == [False]
    assert server.rejected_resumes == 1


def test_tls_server_helper_refuses_an_untrusting_client(tls: Any, tmp_path: Path) -> None:
    server_ssl, _ = tls

    async def main() -> list[str]:
        async with FakeLiveServer(ssl=server_ssl) as server:
            client = client_for(server.url, ssl.create_default_context(), vertex=False)
            names = []
            async with connect(
                client, SessionConfig(setup=wire.Setup(model="m"), max_attempts_per_outage=2)
            ) as live:
                async for item in live:
                    names.append(type(item).__name__)
            return names

    names = asyncio.run(asyncio.wait_for(main(), 30))
    assert "SessionFailed" in names
