"""Session.handle cost and memory: content fast path, lifecycle transitions, idle sessions, many sessions.

Usage: python bench/step.py [--quick]

References measured in the same run:
- a plain dict-table floor: a slotted object whose state moves by one ``dict[(state, kind)]`` lookup;
- a per-session ``transitions.Machine``: what a naive design pays in memory and per trigger.
Targets (issues 3 and 14): content event <= 0.5 µs and <= 7x the floor; lifecycle transition <= 15 µs;
<= 1 KiB per idle live session (no recorder); memory flat over 100,000 events; cost flat (<= 1.2x) from 1 to
10,000 sessions.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from transitions import Machine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from livestate import Session, SessionConfig, events, wire

CONFIG = SessionConfig(setup=wire.Setup(model="models/gemini-live-2.5-flash"))
AUDIO = wire.ServerContent(
    model_turn=wire.Content(parts=(wire.Part(inline_data=wire.Blob(mime_type="audio/pcm", data="A" * 6400)),))
)
RESUMABLE = wire.SessionResumptionUpdate(new_handle="h", resumable=True)
NOT_RESUMABLE = wire.SessionResumptionUpdate(resumable=False)


def live_session() -> Session:
    session = Session(CONFIG)
    session.handle(events.Connect(at=0.0))
    session.handle(events.MessageReceived(at=0.1, message=wire.SetupComplete()))
    return session


class Floor:
    """The cheapest possible state machine: a dict lookup and an attribute store."""

    __slots__ = ("state",)
    TABLE: ClassVar[dict[tuple[str, str], str]] = {("live", "content"): "live", ("live", "update"): "live"}

    def __init__(self) -> None:
        self.state = "live"

    def handle(self, kind: str) -> None:
        self.state = self.TABLE[(self.state, kind)]


def per_event(fn: Callable[[int], None], n: int, rounds: int = 5) -> float:
    """Best µs per call of ``fn(i)`` over ``rounds`` runs of ``n`` calls."""
    for i in range(min(n, 2_000)):  # warm up: caches, branch predictors, the CPU's clock
        fn(i)
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        start = time.perf_counter()
        for i in range(n):
            fn(i)
        best = min(best, time.perf_counter() - start)
    return best / n * 1e6


def memory_per(make: Callable[[], object], count: int) -> float:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    keep = [make() for _ in range(count)]
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    total = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    del keep
    return total / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations, for a smoke run")
    args = parser.parse_args()
    n = 20_000 if args.quick else 100_000

    session = live_session()
    content = events.MessageReceived(at=1.0, message=AUDIO)
    content_us = per_event(lambda i: session.handle(content), n)

    toggles = [
        events.MessageReceived(at=1.0, message=RESUMABLE),
        events.MessageReceived(at=1.0, message=NOT_RESUMABLE),
    ]
    lifecycle_us = per_event(lambda i: session.handle(toggles[i & 1]), n // 4)

    floor = Floor()
    floor_us = per_event(lambda i: floor.handle("content"), n)

    class Model:
        pass

    def machine_model() -> object:
        model = Model()
        Machine(
            model=model,
            states=["a", "b"],
            initial="a",
            transitions=[["go", "a", "b"], ["go", "b", "a"]],
            auto_transitions=False,
        )
        return model

    shared_model = machine_model()
    machine_us = per_event(lambda i: shared_model.go(), n // 4)  # type: ignore[attr-defined]

    idle_bytes = memory_per(live_session, 2_000)
    machine_bytes = memory_per(machine_model, 200)
    floor_bytes = memory_per(Floor, 2_000)

    # Memory over 100,000 events on one live session without a recorder.
    flat = live_session()
    for i in range(1_000):  # warm up caches and free lists first
        flat.handle(content if i % 10 else toggles[i & 1])
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for i in range(n):
        flat.handle(content if i % 10 else toggles[i & 1])
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()

    scaling = {}
    for count in (1, 100, 10_000):
        sessions = [live_session() for _ in range(count)]

        def one(i: int, sessions: list[Session] = sessions, count: int = count) -> None:
            sessions[i % count].handle(content)

        scaling[count] = per_event(one, n)

    print(f"python {sys.version.split()[0]}; best of 5 rounds; {n} events per round")
    print()
    print(f"{'measure':52} {'value':>12} {'vs reference':>22}")
    print(
        f"{'content event (audio), Session.handle':52} {content_us:9.2f} µs {content_us / floor_us:14.1f}x floor"
    )
    print(
        f"{'lifecycle transition (update resumable<->not)':52} {lifecycle_us:9.2f} µs {lifecycle_us / machine_us:12.1f}x trigger"
    )
    print(f"{'dict-table floor, one event':52} {floor_us:9.2f} µs")
    print(f"{'per-session transitions.Machine, one trigger':52} {machine_us:9.2f} µs")
    print(f"{'idle live session, no recorder':52} {idle_bytes:9.0f} B  {'target <= 1024 B':>22}")
    print(
        f"{'per-session transitions.Machine + model':52} {machine_bytes:9.0f} B  {machine_bytes / idle_bytes:14.1f}x ours"
    )
    print(f"{'dict-table floor object':52} {floor_bytes:9.0f} B")
    print(f"{'memory growth over ' + str(n) + ' events (1 in 10 lifecycle)':52} {grown:9.0f} B")
    for count, micros in scaling.items():
        ratio = micros / scaling[1]
        print(
            f"{'content event with ' + str(count) + ' live sessions':52} {micros:9.2f} µs {ratio:13.2f}x of 1"
        )


if __name__ == "__main__":
    main()
