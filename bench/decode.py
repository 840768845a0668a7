"""Decode speed: livestate vs google-genai's parser vs a bare JSON load, in one run.

Usage: python bench/decode.py [--rounds N] [--stdlib-json]

``--stdlib-json`` measures livestate as installed without the ``speed`` extra (its stdlib JSON fallback);
the orjson row is then left out.

Two mixes: every valid server fixture once ("fixtures"), and a session-like mix where 8 frames in 10 are
model audio (80 ms of 24 kHz PCM, pretty-printed as the Gemini API sends it) and the rest are fixtures
("session"). Reported: µs per message (best round) and, per parser, the median over interleaved rounds of
its time over livestate's on the same frames. The SDK receive path is exactly what
``AsyncSession._receive`` does: ``json.loads``, the backend converter, then
``LiveServerMessage._from_response``. ``model_validate_json`` is compared on the frames it accepts (it
rejects unknown fields such as Vertex's ``candidatesTokenCount``), against livestate on those same frames.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from sdk_reference import sdk_parse  # noqa: E402

warnings.simplefilter("ignore")


def fixture_frames() -> list[tuple[str, dict[str, Any]]]:
    lines = (HERE.parent / "tests" / "fixtures" / "server_valid.jsonl").read_text().splitlines()
    out = []
    for line in lines:
        item = json.loads(line)
        if item["name"].startswith(("error_", "forward_compat_unknown_top", "snake_case")):
            continue  # the SDK raises or returns nothing for these: not a like-for-like comparison
        out.append((item["name"], item["frame"]))
    return out


def audio_frame(i: int) -> str:
    pcm = bytes((i * 7 + k) % 256 for k in range(3840))
    frame = {
        "serverContent": {
            "modelTurn": {
                "parts": [
                    {
                        "inlineData": {
                            "mimeType": "audio/pcm;rate=24000",
                            "data": base64.b64encode(pcm).decode(),
                        }
                    }
                ]
            }
        }
    }
    return json.dumps(frame, indent=2) + "\n"


def timed(fn: Callable[[], None], count: int) -> float:
    """µs per message for one run of ``fn`` (which handles ``count`` messages), GC paused as timeit does."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        fn()
        return (time.perf_counter() - start) / count * 1e6
    finally:
        gc.enable()


def loop(parse: Callable[[Any], object], frames: list[Any]) -> Callable[[], None]:
    def run() -> None:
        for frame in frames:
            parse(frame)

    return run


def measure(
    mix: list[tuple[str, bool]], rounds: int, decode: Callable[[Any], object]
) -> dict[str, tuple[float, float]]:
    """Per parser: (best µs per message, median over rounds of its time / livestate's on the same frames).

    Every round runs every parser once, interleaved, so a slow patch of a shared machine lands on all of
    them; the ratio is taken within each round, then the median over rounds is reported.
    """
    from google.genai import types

    datas = [data for data, _ in mix]
    validatable = []
    for data in datas:
        try:
            types.LiveServerMessage.model_validate_json(data)
            validatable.append(data)
        except Exception:
            pass

    def run_sdk() -> None:
        for data, vertex in mix:
            sdk_parse(json.loads(data), vertex=vertex)

    # name: (run, message count, the livestate run measured on the same frames)
    parsers: dict[str, tuple[Callable[[], None], int, str]] = {
        "livestate.decode": (loop(decode, datas), len(datas), "livestate.decode"),
        "google-genai receive path": (run_sdk, len(datas), "livestate.decode"),
        "livestate.decode (frames pydantic accepts)": (
            loop(decode, validatable),
            len(validatable),
            "livestate.decode (frames pydantic accepts)",
        ),
        "google-genai model_validate_json": (
            loop(types.LiveServerMessage.model_validate_json, validatable),
            len(validatable),
            "livestate.decode (frames pydantic accepts)",
        ),
        "bare json.loads": (loop(json.loads, datas), len(datas), "livestate.decode"),
    }
    if "orjson" in sys.modules and sys.modules["orjson"] is not None:
        orjson_loads = sys.modules["orjson"].loads
        parsers["bare orjson.loads"] = (loop(orjson_loads, datas), len(datas), "livestate.decode")
    times: dict[str, list[float]] = {name: [] for name in parsers}
    for _ in range(rounds):
        for name, (run, count, _ref) in parsers.items():
            times[name].append(timed(run, count))
    results = {}
    for name, (_run, _count, ref) in parsers.items():
        ratios = [theirs / ours for theirs, ours in zip(times[name], times[ref], strict=True)]
        results[name] = (min(times[name]), statistics.median(ratios))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=20, help="copies of the mix per round")
    parser.add_argument("--stdlib-json", action="store_true", help="livestate without orjson")
    args = parser.parse_args()
    if args.stdlib_json:
        sys.modules["orjson"] = None  # type: ignore[assignment]
    from livestate.wire import decode

    fixtures = [(json.dumps(f), "vertex" in name) for name, f in fixture_frames()]
    session = []
    for i, item in enumerate(fixtures):
        session += [(audio_frame(i * 4 + k), False) for k in range(4)] + [item]
    mixes = {"fixtures": fixtures * args.repeat, "session": session * max(1, args.repeat // 4)}

    loader = "stdlib json" if args.stdlib_json else "orjson"
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, {args.rounds} interleaved rounds,")
    print(f"livestate loading JSON with {loader}")
    for name, mix in mixes.items():
        results = measure(mix, args.rounds, decode)
        print(f"\nmix '{name}': {len(mix)} messages per round")
        print(f"  {'parser':44} {'best µs/msg':>11} {'median ratio to livestate':>26}")
        for parser_name, (micros, ratio) in results.items():
            if parser_name.startswith("livestate"):
                shown = ""
            elif ratio >= 1:
                shown = f"livestate {ratio:5.2f}x faster"
            else:
                shown = f"livestate {1 / ratio:5.2f}x slower"
            print(f"  {parser_name:44} {micros:11.2f} {shown:>26}")


if __name__ == "__main__":
    main()
