"""No secret in any log record: API keys, bearer tokens, key query parameters and resumption handles.

Real sessions on 127.0.0.1 (FakeLiveServer, with a drop so the session resumes with a handle) run with every
logger at DEBUG, through the websockets driver and through google-genai; then no record's message, arguments,
traceback or stack may contain the key, the token or any handle the server issued. ``livestate demo`` runs
at DEBUG in a subprocess with the same check on its handles.
"""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import sys
from collections.abc import Iterable
from typing import Any

import pytest
from websockets.frames import Frame, Opcode

from livestate import Backend, SessionConfig, commands, wire
from livestate.drivers import redact as redact_module
from livestate.drivers.redact import MASK, SecretFilter, guard, redact, redacting_logger
from livestate.drivers.websockets import connect
from livestate.testing.server import FakeLiveServer, Fault, FaultPlan
from livestate.testing.tls import loopback_contexts

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

KEY = "AIzaFAKEKEY" + "k" * 28  # shaped like a Google API key (39 characters)
QUERY_KEY = "AIzaFAKEQUERYKEY" + "q" * 23
TOKEN = "ya29.FAKE-bearer-token-0123456789"
OPAQUE = "opaque-secret-without-a-known-shape"  # caught by where it is, not by what it looks like

FAST: dict[str, Any] = {
    "goaway_margin": 0.05,
    "backoff_initial": 0.02,
    "backoff_max": 0.2,
    "setup_timeout": 3.0,
    "healthy_after": 0.5,
    "guard_window": 0.1,
    "replay_after_fresh_session": True,
}
PLAN = FaultPlan(faults=(Fault(kind="drop", on_text="m25"),))


def issued_handles(server: FakeLiveServer, items: Iterable[Any]) -> set[str]:
    """Every handle the server issued (its ledger) or the client saw."""
    handles = {h for session in server.sessions for h in session.handles}
    handles |= {i.new_handle for i in items if isinstance(i, wire.SessionResumptionUpdate) and i.new_handle}
    return handles


def leaks(records: Iterable[logging.LogRecord], secrets: Iterable[str]) -> list[str]:
    """``logger: text`` for every record whose message, args, traceback or stack holds a secret."""
    secrets = [s for s in secrets if s]
    found = []
    for record in records:
        texts = (record.getMessage(), str(record.args), record.exc_text or "", record.stack_info or "")
        for text in texts:
            if any(s in text for s in secrets):
                found.append(f"{record.name}: {text[:300]}")
    return found


def debug_everywhere(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("websockets", "livestate", "google_genai", "transitions", "asyncio"):
        caplog.set_level(logging.DEBUG, logger=name)


async def talk(live: Any, count: int) -> list[Any]:
    items: list[Any] = []

    async def read() -> None:
        async for item in live:
            items.append(item)

    reader = asyncio.ensure_future(read())
    for i in range(count):
        await live.send(wire.RealtimeInput(text=f"m{i}" + ("?" if i % 20 == 19 else "")))
        await asyncio.sleep(0.005)
    for _ in range(100):
        if not live.session.unconfirmed_count:
            break
        await asyncio.sleep(0.01)
    await live.close()
    await asyncio.wait_for(reader, 5)
    return items


# --- the masking itself -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"> x-goog-api-key: {OPAQUE}", OPAQUE),
        (f"< X-Goog-Api-Key: {OPAQUE}", OPAQUE),
        (f"> Authorization: Bearer {OPAQUE}", OPAQUE),
        (f"> authorization: Token {OPAQUE}", OPAQUE),
        (f"> Proxy-Authorization: Basic {OPAQUE}", OPAQUE),
        (f"{{'x-goog-api-key': '{OPAQUE}', 'x-goog-api-client': 'sdk/1'}}", OPAQUE),
        (f"> GET /ws/Service?alt=json&key={OPAQUE} HTTP/1.1", OPAQUE),
        (f"wss://host/ws?access_token={OPAQUE}&x=1", OPAQUE),
        (f'{{"sessionResumptionUpdate":{{"newHandle":"{OPAQUE}","resumable":true}}}}', OPAQUE),
        (f'{{"setup": {{"sessionResumption": {{"handle": "{OPAQUE}"}}}}}}', OPAQUE),
        (f"SessionResumptionConfig(handle='{OPAQUE}', transparent=True)", OPAQUE),
        (f"LiveServerSessionResumptionUpdate(new_handle='{OPAQUE}')", OPAQUE),
        (f"could not connect: {KEY} is wrong", KEY),
        (f"token {TOKEN}", TOKEN),
        ("Authorization: Token auth_tokens/abc123", "auth_tokens/abc123"),
    ],
)
def test_redact_masks_each_kind_of_secret(text: str, secret: str) -> None:
    masked = redact(text)
    assert secret not in masked
    assert MASK in masked


@pytest.mark.parametrize(
    "text",
    [
        "> x-goog-api-client: google-genai-sdk/3.6.1 gl-python/3.11",
        "< HTTP/1.1 101 Switching Protocols",
        "session SETUP_COMPLETE -> RESUMABLE on handle_update",
        "> GET /ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent HTTP/1.1",
        '{"sessionResumptionUpdate":{"resumable":false}}',
    ],
)
def test_redact_leaves_what_is_not_a_secret(text: str) -> None:
    assert redact(text) == text


def test_a_handle_in_the_elided_middle_of_a_frame_is_masked() -> None:
    """websockets shows a long frame's start and end only: the handle may straddle the cut."""
    handle = "CjQx" + "0123456789" * 20 + "-tail-XYZ"
    payload = f'{{"setup":{{"model":"models/x","sessionResumption":{{"handle":"{handle}"}}}}}}'
    frame = Frame(Opcode.TEXT, payload.encode())
    assert "-tail-XYZ" in str(frame) and "handle" not in str(frame)  # the tail shows, its key does not
    record = logging.LogRecord("websockets.client", logging.DEBUG, __file__, 1, "> %s", (frame,), None)
    SecretFilter().filter(record)
    assert not leaks([record], ["-tail-XYZ", "CjQx", "0123456789"])
    assert record.args == ()
    assert record.getMessage().startswith("> TEXT ")


def test_a_traceback_is_masked() -> None:
    try:
        raise ValueError(f"bad uri wss://h/ws?key={OPAQUE}")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    SecretFilter().filter(record)
    assert record.exc_text and OPAQUE not in record.exc_text and MASK in record.exc_text
    assert OPAQUE not in logging.Formatter().format(record)


def test_redacting_logger_is_a_filtered_child_and_leaves_the_parent_alone() -> None:
    parent = logging.getLogger("test_secrets.parent")
    child = redacting_logger(parent)
    assert child.name == "test_secrets.parent.livestate" and child.parent is parent
    assert redacting_logger(parent) is child and len(child.filters) == 1
    assert parent.filters == []


def test_guard_holds_the_filter_until_the_last_release() -> None:
    target = logging.getLogger("test_secrets.guarded")
    first, second = guard(target), guard(target)
    assert len(target.filters) == 1
    first()
    first()  # twice: harmless
    assert len(target.filters) == 1
    second()
    assert target.filters == [] and "test_secrets.guarded" not in redact_module._guards


# --- real sessions at DEBUG ---------------------------------------------------------------------------


def test_websockets_driver_and_fake_server_log_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    debug_everywhere(caplog)

    async def main() -> tuple[list[Any], FakeLiveServer]:
        async with FakeLiveServer(PLAN) as server:
            url = f"{server.url}/ws/Service?alt=json&key={QUERY_KEY}&access_token={OPAQUE}"
            headers = {"x-goog-api-key": KEY, "Authorization": f"Bearer {TOKEN}"}
            config = SessionConfig(setup=wire.Setup(model="models/fake"), **FAST)
            async with connect(url, config, headers=headers) as live:
                items = await talk(live, 50)
            return items, server

    items, server = asyncio.run(asyncio.wait_for(main(), 60))
    handles = issued_handles(server, items)
    assert len(handles) >= 3 and any(isinstance(i, commands.Resumed) for i in items)
    assert not leaks(caplog.records, [KEY, QUERY_KEY, TOKEN, OPAQUE, *handles])
    assert not any(s in caplog.text for s in [KEY, QUERY_KEY, TOKEN, OPAQUE, *handles])
    # Not vacuous: both sides logged the headers and the handles, masked.
    messages = [(r.name, r.getMessage()) for r in caplog.records]
    for side, arrow in (("websockets.client.livestate", ">"), ("websockets.server.livestate", "<")):
        assert (side, f"{arrow} x-goog-api-key: {MASK}") in messages
        assert (side, f"{arrow} Authorization: Bearer {MASK}") in messages
        assert any(n == side and f'Handle":"{MASK}' in m for n, m in messages)
    assert any(f"key={MASK}" in m for _, m in messages)
    assert any(f'handle":"{MASK}"}}}}}}' in m for _, m in messages)  # the resume's setup


@pytest.mark.parametrize("vertex", [False, True], ids=["gemini-api", "vertex-express"])
def test_genai_driver_logs_no_secret(vertex: bool, caplog: pytest.LogCaptureFixture, tmp_path: Any) -> None:
    genai = pytest.importorskip("google.genai")
    from google.genai import types

    from livestate.drivers.genai import connect as genai_connect

    server_ssl, client_ssl = loopback_contexts(tmp_path)
    debug_everywhere(caplog)
    sdk_logger = logging.getLogger("websockets.client")
    filters_before = list(sdk_logger.filters)

    async def main() -> tuple[list[Any], FakeLiveServer]:
        async with FakeLiveServer(PLAN, vertex=vertex, ssl=server_ssl) as server:
            options = types.HttpOptions(
                base_url=server.url.replace("wss://", "https://"),
                headers={"Authorization": f"Bearer {TOKEN}"},
                async_client_args={"ssl": client_ssl},
            )
            client = genai.Client(vertexai=vertex, api_key=KEY, http_options=options)
            options_ = dict(FAST)
            if vertex:
                options_.update(backend=Backend.VERTEX, transparent=True)
            config = SessionConfig(setup=wire.Setup(model="gemini-live-2.5-flash"), **options_)
            async with genai_connect(client, config) as live:
                assert any(isinstance(f, SecretFilter) for f in sdk_logger.filters)
                items = await talk(live, 50)
            return items, server

    items, server = asyncio.run(asyncio.wait_for(main(), 60))
    handles = issued_handles(server, items)
    assert len(handles) >= 3 and any(isinstance(i, commands.Resumed) for i in items)
    assert not leaks(caplog.records, [KEY, TOKEN, *handles])
    assert not any(s in caplog.text for s in [KEY, TOKEN, *handles])
    messages = [(r.name, r.getMessage()) for r in caplog.records]
    assert ("websockets.client", f"> x-goog-api-key: {MASK}") in messages  # the SDK's own connection
    assert ("websockets.client", f"> Authorization: Bearer {MASK}") in messages
    assert ("websockets.server.livestate", f"< x-goog-api-key: {MASK}") in messages
    # The filter is off the SDK's logger again once the session closed.
    assert sdk_logger.filters == filters_before


def test_livestate_demo_at_debug_logs_no_handle() -> None:
    """``livestate demo`` with the root logger at DEBUG: no ``fake-handle-N`` in its log."""
    script = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)\n"
        "from livestate.cli import main\n"
        "sys.exit(main(['demo']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "nothing lost." in done.stdout
    assert "Resumed" in done.stdout  # it did resume with handles
    log = done.stderr
    assert not re.search(r"fake-handle-\d", log + done.stdout)
    assert f'"newHandle":"{MASK}' in log and f'handle":"{MASK}"}}}}}}' in log  # not vacuous


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_a_session_kept_in_a_store_logs_no_handle(
    kind: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Any,
    request: pytest.FixtureRequest,
) -> None:
    """A stored session that resumes after a drop, then loses its lease (warnings are logged), then is listed
    by the CLI: no record and no CLI line holds a handle the server issued."""
    from livestate.cli import main as cli
    from livestate.errors import SessionFailedError
    from livestate.store import SQLiteStore
    from livestate.store.redis import RedisStore

    debug_everywhere(caplog)
    url = f"sqlite://{tmp_path / 's.db'}" if kind == "sqlite" else request.getfixturevalue("redis_url")

    async def main() -> tuple[list[Any], FakeLiveServer, str]:
        store = SQLiteStore(tmp_path / "s.db") if kind == "sqlite" else RedisStore.from_url(url)
        async with FakeLiveServer(PLAN) as server:
            config = SessionConfig(setup=wire.Setup(model="models/fake"), **FAST)
            async with connect(server.url, config, store=store, session_id="secret-test") as live:
                items: list[Any] = []

                async def read() -> None:
                    async for item in live:
                        items.append(item)

                reader = asyncio.ensure_future(read())
                for i in range(40):
                    await live.send(wire.RealtimeInput(text=f"m{i}"))
                    await asyncio.sleep(0.005)
                listing = await asyncio.to_thread(cli, ["sessions", "show", url, "secret-test"])
                assert listing == 0
                # Another worker takes the session over: this one fails, loudly, in the log.
                if isinstance(store, SQLiteStore):
                    store._db.execute("UPDATE sessions SET fence = fence + 1")
                else:
                    await store.client.incr(store._keys("secret-test", "fence")[0])
                with pytest.raises(SessionFailedError):
                    for i in range(40, 60):
                        await live.send(wire.RealtimeInput(text=f"m{i}"))
                reader.cancel()
        await store.close()
        return items, server, url

    items, server, _ = asyncio.run(asyncio.wait_for(main(), 60))
    handles = issued_handles(server, items)
    assert len(handles) >= 3 and any(isinstance(i, commands.Resumed) for i in items)
    assert any("lease lost" in r.getMessage() for r in caplog.records)  # not vacuous: the store logged
    assert not leaks(caplog.records, handles)
    assert not any(h in caplog.text for h in handles)
    shown = capsys.readouterr().out
    assert "secret-test" in shown and "sha256:" in shown and not any(h in shown for h in handles)
