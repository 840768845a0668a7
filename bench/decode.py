"""Decode speed: livestate vs google-genai's parser vs a bare JSON load, in one run.

Usage: python bench/decode.py [--rounds N]

Two mixes: every valid server fixture once ("fixtures"), and a session-like mix where 8 frames in 10 are
model audio (80 ms of 24 kHz PCM, pretty-printed as the Gemini API sends it) and the rest are fixtures
("session"). Reported: µs per message (best of several rounds) and the ratios livestate/SDK and
livestate/bare-load. The SDK path is exactly what ``AsyncSession._receive`` does: ``json.loads``, the
backend converter, then ``LiveServerMessage._from_response``; ``model_validate_json`` is shown too, on the
frames it accepts (it rejects unknown fields such as Vertex's ``candidatesTokenCount``).
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from livestate import wire

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


def best_of(fn: Callable[[], None], count: int, rounds: int) -> float:
    """Best µs per message over ``rounds`` runs of ``fn`` (which handles ``count`` messages)."""
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        gc.disable()  # as timeit does: a collection landing in one parser's round is noise, not its cost
        try:
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        finally:
            gc.enable()
    return best / count * 1e6


def measure(mix: list[tuple[str, bool]], rounds: int) -> dict[str, float]:
    datas = [data for data, _ in mix]
    vertex = [v for _, v in mix]

    def run_livestate() -> None:
        for data in datas:
            wire.decode(data)

    def run_sdk() -> None:
        for data, v in zip(datas, vertex, strict=True):
            sdk_parse(json.loads(data), vertex=v)

    def run_orjson() -> None:
        for data in datas:
            orjson.loads(data)

    def run_json() -> None:
        for data in datas:
            json.loads(data)

    from google.genai import types

    validatable = []
    for data in datas:
        try:
            types.LiveServerMessage.model_validate_json(data)
            validatable.append(data)
        except Exception:
            pass

    def run_validate_json() -> None:
        for data in validatable:
            types.LiveServerMessage.model_validate_json(data)

    n = len(datas)
    return {
        "livestate.decode": best_of(run_livestate, n, rounds),
        "google-genai receive path": best_of(run_sdk, n, rounds),
        "google-genai model_validate_json": best_of(run_validate_json, len(validatable), rounds),
        "bare orjson.loads": best_of(run_orjson, n, rounds),
        "bare json.loads": best_of(run_json, n, rounds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=20, help="copies of the mix per round")
    args = parser.parse_args()

    fixtures = [(json.dumps(f), "vertex" in name) for name, f in fixture_frames()]
    session = []
    for i, item in enumerate(fixtures):
        session += [(audio_frame(i * 4 + k), False) for k in range(4)] + [item]
    mixes = {"fixtures": fixtures * args.repeat, "session": session * max(1, args.repeat // 4)}

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, best of {args.rounds} rounds")
    for name, mix in mixes.items():
        results = measure(mix, args.rounds)
        ours = results["livestate.decode"]
        print(f"\nmix '{name}': {len(mix)} messages per round")
        print(f"  {'parser':36} {'µs/msg':>8} {'livestate is':>14}")
        for parser_name, micros in results.items():
            ratio = (
                ""
                if parser_name == "livestate.decode"
                else f"{micros / ours:6.2f}x faster"
                if micros > ours
                else f"{ours / micros:6.2f}x slower"
            )
            print(f"  {parser_name:36} {micros:8.2f} {ratio:>14}")


if __name__ == "__main__":
    main()
