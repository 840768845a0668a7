"""Stock framework services vs livestate's, through the same fault plans, against FakeLiveServer over TLS.

    python bench/frameworks.py                 # both frameworks, both backends, every plan
    python bench/frameworks.py pipecat         # one framework, both backends
    python bench/frameworks.py livekit vertex  # one framework, one backend (gemini or vertex)

Backends: the Gemini API (an API key) and Vertex AI (the server answers as Vertex does; livestate then runs
transparent sessions). Vertex needs Google credentials, made offline as the integration tests make them:
pipecat's Vertex service gets service-account JSON for a throwaway key whose token_uri is a loopback token
endpoint (its own google-auth refresh runs unchanged), LiveKit a project and a ready OAuth token.

Per framework, backend and plan it prints, for the stock service and for livestate's: messages lost (given to the
framework, in no server conversation), duplicated (more than once in one conversation), the longest reconnect
gap (from the first fault, a goAway sent or a drop, to the next connection's start, on the server) and turns cut (generations the
server started whose turnComplete never went out on an open connection). Offline, loopback only, bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from google.genai import types
from websockets.protocol import State

from livestate.testing import server as fake
from livestate.testing.server import FakeLiveServer, FaultPlan
from livestate.testing.tls import loopback_contexts

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from integration_support import (
    FAST,
    VERTEX_TOKEN,
    duplicated,
    http_options,
    lost,
    plans,
    vertex_service_account,
)

MESSAGES = 60
#: Seconds between the messages given to the framework (60 messages over ~1.2 s, outages included).
PACE = 0.02


class MeasuredServer(FakeLiveServer):
    """FakeLiveServer that also records when each connection starts and ends, and cut generations."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spans: list[tuple[float, float]] = []
        self.turns_started = 0
        self.turns_completed = 0
        self.fault_at: float | None = None

    async def _serve(self, ws: Any) -> None:
        start = time.monotonic()
        try:
            await super()._serve(ws)
        finally:
            self.spans.append((start, time.monotonic()))

    def gap(self) -> float:
        """Seconds from the first fault (goAway sent, or the connection dropped) to the next connection."""
        if self.fault_at is None:
            return 0.0
        later = [start for start, _ in self.spans if start > self.fault_at]
        return min(later) - self.fault_at if later else float("inf")

    def mark_fault(self) -> None:
        if self.fault_at is None:
            self.fault_at = time.monotonic()


_original_generate = fake._Connection._generate
_original_fault = fake._Connection._maybe_fault
_original_go_away = fake._Connection._go_away_later


async def _marked_fault(self: Any) -> bool:
    finished: bool = await _original_fault(self)
    if finished and isinstance(self.server, MeasuredServer):
        self.server.mark_fault()
    return finished


async def _marked_go_away(self: Any, delay: float, *, silent: bool = False) -> None:
    await asyncio.sleep(delay)
    if isinstance(self.server, MeasuredServer) and not self.going_away:
        self.server.mark_fault()
    await _original_go_away(self, 0.0, silent=silent)


async def _counted_generate(self: Any) -> None:
    server = self.server
    if isinstance(server, MeasuredServer):
        server.turns_started += 1
    await _original_generate(self)
    if isinstance(server, MeasuredServer) and self.ws.state is State.OPEN and not self.silent:
        server.turns_completed += 1


fake._Connection._generate = _counted_generate  # type: ignore[method-assign]
fake._Connection._maybe_fault = _marked_fault  # type: ignore[method-assign]
fake._Connection._go_away_later = _marked_go_away  # type: ignore[method-assign]


async def until(condition: Callable[[], bool], tries: int = 500) -> bool:
    for _ in range(tries):
        if condition():
            return True
        await asyncio.sleep(0.01)
    return False


def tag(i: int) -> str:
    return f"m{i}" + ("?" if i % 10 == 9 else "")


#: Service-account JSON for pipecat's Vertex service (set by main() while its token endpoint runs).
VERTEX_CREDENTIALS: str | None = None


async def run_pipecat(
    server: MeasuredServer, client_ssl: Any, livestate: bool, vertex: bool = False
) -> list[str]:
    from pipecat.frames.frames import EndFrame, InputTextRawFrame, LLMContextFrame
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.runner import PipelineRunner
    from pipecat.pipeline.task import PipelineTask
    from pipecat.processors.aggregators.llm_context import LLMContext
    from pipecat.services.google.gemini_live.llm import GeminiLiveLLMService as Stock
    from pipecat.services.google.gemini_live.vertex.llm import GeminiLiveVertexLLMService as StockVertex

    from livestate.integrations.pipecat import GeminiLiveLLMService, GeminiLiveVertexLLMService

    kwargs: dict[str, Any] = {"http_options": http_options(server, client_ssl)}
    if vertex:
        assert VERTEX_CREDENTIALS is not None
        kwargs |= {
            "credentials": VERTEX_CREDENTIALS,
            "project_id": "bench",
            "location": "us-central1",
            "settings": StockVertex.Settings(model="gemini-2.5-flash-native-audio-preview-12-2025"),
        }
        ours: Any = GeminiLiveVertexLLMService
        stock: Any = StockVertex
    else:
        kwargs |= {
            "api_key": "bench-key",
            "settings": Stock.Settings(model="models/gemini-2.5-flash-native-audio-preview-12-2025"),
        }
        ours, stock = GeminiLiveLLMService, Stock
    llm = ours(livestate_options=FAST, **kwargs) if livestate else stock(**kwargs)
    task = PipelineTask(Pipeline([llm]))
    running = asyncio.ensure_future(PipelineRunner(handle_sigint=False).run(task))
    sent = []
    try:
        await task.queue_frame(
            LLMContextFrame(context=LLMContext(messages=[{"role": "user", "content": "hi"}]))
        )
        await until(lambda: llm._session is not None and llm._ready_for_realtime_input)
        for i in range(MESSAGES):
            sent.append(tag(i))
            await task.queue_frame(InputTextRawFrame(text=tag(i)))
            await asyncio.sleep(PACE)
        await asyncio.sleep(1.5)  # the same settling time for both
        await task.queue_frame(EndFrame())
        await asyncio.wait_for(running, 10)
    finally:
        if not running.done():
            await task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(running, 5)
    return sent


async def run_livekit(
    server: MeasuredServer, client_ssl: Any, livestate: bool, vertex: bool = False
) -> list[str]:
    from google.oauth2.credentials import Credentials
    from livekit.plugins.google.realtime import RealtimeModel as Stock

    from livestate.integrations.livekit import RealtimeModel

    kwargs: dict[str, Any] = {
        "model": "gemini-2.5-flash-native-audio-preview-12-2025",
        "http_options": http_options(server, client_ssl),
    }
    if vertex:
        kwargs |= {
            "vertexai": True,
            "project": "bench",
            "location": "us-central1",
            "credentials": Credentials(VERTEX_TOKEN),
        }
    else:
        kwargs["api_key"] = "bench-key"
    model = RealtimeModel(livestate_options=FAST, **kwargs) if livestate else Stock(**kwargs)
    sess = model.session()
    sent = []
    try:
        await until(lambda: sess._active_session is not None)
        for i in range(MESSAGES):
            sent.append(tag(i))
            sess._send_client_event(types.LiveClientRealtimeInput(text=tag(i)))
            await asyncio.sleep(PACE)
        await asyncio.sleep(1.5)
    finally:
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(sess.aclose(), 10)
    return sent


RUNNERS = {"pipecat": run_pipecat, "livekit": run_livekit}
BACKENDS = {"gemini": False, "vertex": True}


async def measure(
    framework: str, vertex: bool, plan: FaultPlan, livestate: bool, tls: Any
) -> tuple[int, int, float, int]:
    server_ssl, client_ssl = tls
    # Turns of ~0.2 s, and the faults right after a question, so a reply is in flight when they hit.
    async with MeasuredServer(
        plan, ssl=server_ssl, turn_frames=20, frame_interval=0.01, vertex=vertex
    ) as server:
        try:
            sent = await asyncio.wait_for(RUNNERS[framework](server, client_ssl, livestate, vertex), 40)
        except Exception as exc:  # a stock service that gave up: what it was given still counts
            logging.getLogger(__name__).warning("%s run ended with %r", framework, exc)
            sent = [tag(i) for i in range(MESSAGES)]
    cut = server.turns_started - server.turns_completed
    return len(lost(server, sent)), len(duplicated(server, sent)), server.gap(), cut


def main(argv: list[str]) -> None:
    warnings.simplefilter("ignore")
    logging.basicConfig(level=logging.ERROR)
    with contextlib.suppress(ImportError):
        from loguru import logger

        logger.remove()
    unknown = sorted(set(argv) - set(RUNNERS) - set(BACKENDS))
    if unknown:
        raise SystemExit(f"unknown {unknown}: choose from {sorted(RUNNERS)} and {sorted(BACKENDS)}")
    frameworks = [f for f in RUNNERS if f in argv] or list(RUNNERS)
    backends = [b for b in BACKENDS if b in argv] or list(BACKENDS)
    global VERTEX_CREDENTIALS
    with tempfile.TemporaryDirectory() as directory, vertex_service_account() as (credentials, _):
        VERTEX_CREDENTIALS = credentials
        tls = loopback_contexts(Path(directory))
        print(
            "| framework | backend | plan | stock lost | stock dup | stock gap (s) | stock cut "
            "| livestate lost | livestate dup | livestate gap (s) | livestate cut |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for framework in frameworks:
            for backend in backends:
                vertex = BACKENDS[backend]
                for name, plan in plans("m29?").items():
                    stock = asyncio.run(measure(framework, vertex, plan, False, tls))
                    ours = asyncio.run(measure(framework, vertex, plan, True, tls))
                    print(
                        f"| {framework} | {backend} | {name} | {stock[0]} | {stock[1]} | {stock[2]:.2f} "
                        f"| {stock[3]} | {ours[0]} | {ours[1]} | {ours[2]:.2f} | {ours[3]} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main(sys.argv[1:])
