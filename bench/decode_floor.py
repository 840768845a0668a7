"""Decode cost per fixture frame against a bare ``orjson.loads``, and the floor of building the objects.

Usage: python bench/decode_floor.py [--number N] [--repeat R] [--sort]

For every frame of the 'fixtures' mix of bench/decode.py: ns per call of ``orjson.loads``, of
``livestate.wire.decode``, and of the *floor*: ``orjson.loads`` followed by straight-line code, generated for
that one frame, that builds exactly the objects ``decode`` returns for it with the cheapest construction
there is (the fast path's builder subclass: plain slot stores, absent fields set to None from one
unpacked tuple, then ``__class__`` set back), reading each
value from the parsed dict by its known path, with no check of any kind (no type test, no dispatch on
keys, no range check). A Duration's nanoseconds and an int64 string's value are computed (``int``), as any
decoder must. The floor is what any decoder that returns these frozen attrs objects pays, however its checks
are done; decode's excess over it is the price of checking and dispatch.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from decode import fixture_frames  # noqa: E402

from livestate import wire  # noqa: E402
from livestate.wire.fast import _builder, none_assignment  # noqa: E402
from livestate.wire.hooks import to_camel  # noqa: E402
from livestate.wire.scalars import Duration  # noqa: E402

_BUILDERS: dict[type, type] = {}


def builder(cls: type) -> type:
    if cls not in _BUILDERS:
        _BUILDERS[cls] = _builder(cls)
    return _BUILDERS[cls]


class _Gen:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.namespace: dict[str, Any] = {"loads": orjson.loads}
        self.count = 0
        self.objects = 0

    def var(self) -> str:
        self.count += 1
        return f"x{self.count}"

    def ref(self, value: Any) -> str:
        name = f"c{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def value(self, result: Any, wire_expr: str, wire_value: Any) -> str:
        """An expression for ``result``, which the frame holds at ``wire_expr`` (as ``wire_value``)."""
        if type(result) is Duration:
            self.objects += 1
            v = self.var()
            whole, _, fraction = wire_value[:-1].partition(".")
            if fraction:
                nanos = f"int({wire_expr}[:-1].replace('.', '').ljust({len(whole) + 9}, '0'))"
            else:
                nanos = f"int({wire_expr}[:-1]) * 1_000_000_000"
            self.lines += [
                f"{v} = {self.ref(builder(Duration))}()",
                f"{v}.nanos = {nanos}",
                f"{v}.text = {wire_expr}",
                f"{v}.__class__ = {self.ref(Duration)}",
            ]
            return v
        if attrs.has(type(result)):
            return self.obj(result, wire_expr, wire_value)
        if type(result) is tuple:
            if all(type(e) is str for e in result):
                return f"tuple({wire_expr})"
            items = [
                self.value(e, f"{wire_expr}[{i}]", w)
                for i, (e, w) in enumerate(zip(result, wire_value, strict=False))
            ]
            return "(" + "".join(f"{i}, " for i in items) + ")"
        if type(result) is int and type(wire_value) is str:
            return f"int({wire_expr})"
        return wire_expr  # a str, bool, int or untyped object: the parsed value itself

    def obj(self, result: Any, wire_expr: str, wire_value: dict[str, Any], usage: Any = None) -> str:
        self.objects += 1
        cls = type(result)
        v = self.var()
        present: list[tuple[str, str]] = []
        absent: list[str] = []
        for field in attrs.fields(cls):
            value = getattr(result, field.name)
            if field.name == "usage_metadata":
                if value is None:
                    absent.append(field.name)
                else:
                    present.append((field.name, usage))
            elif value is None:
                absent.append(field.name)
            else:
                key = to_camel(field.name)
                present.append((field.name, self.value(value, f"{wire_expr}[{key!r}]", wire_value[key])))
        self.lines.append(f"{v} = {self.ref(builder(cls))}()")
        if absent:
            self.lines.append(none_assignment(v, absent))
        self.lines += [f"{v}.{name} = {expr}" for name, expr in present]
        self.lines.append(f"{v}.__class__ = {self.ref(cls)}")
        return v


def floor_function(frame: dict[str, Any]) -> tuple[Callable[[str], Any], int]:
    """A function that loads this frame's text and builds exactly its decoded message, unchecked; and the
    number of objects it makes (attrs instances, Durations included)."""
    message = wire.decode(json.dumps(frame))
    gen = _Gen()
    usage = None
    if "usageMetadata" in frame:
        usage = gen.obj(message.usage_metadata, "o['usageMetadata']", frame["usageMetadata"])
    (kind,) = [k for k in frame if k != "usageMetadata"]
    result = gen.obj(message, f"o[{kind!r}]", frame[kind], usage)
    source = "def floor(s):\n    o = loads(s)\n" + "".join(f"    {line}\n" for line in gen.lines)
    source += f"    return {result}\n"
    exec(compile(source, "<floor>", "exec"), gen.namespace)
    fn = gen.namespace["floor"]
    built = fn(json.dumps(frame))
    assert built == message and repr(built) == repr(message), (built, message)
    return fn, gen.objects


def per_call_ns(fn: Callable[[str], Any], text: str, number: int) -> float:
    return timeit.timeit(lambda: fn(text), number=number) / number * 1e9


def mix_ns(pairs: list[tuple[Callable[[str], Any], str]]) -> float:
    """ns per message of one pass over the mix, as bench/decode.py times it (GC paused)."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for fn, text in pairs:
            fn(text)
        return (time.perf_counter() - start) / len(pairs) * 1e9
    finally:
        gc.enable()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=2000, help="calls per timing")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (the best is kept)")
    parser.add_argument("--sort", action="store_true", help="by decode's excess over the floor")
    args = parser.parse_args()
    frames = [(name, json.dumps(frame), *floor_function(frame)) for name, frame in fixture_frames()]
    empty = min(per_call_ns(lambda s: None, "", args.number) for _ in range(args.rounds))
    best: dict[str, list[float]] = {name: [float("inf")] * 3 for name, *_ in frames}
    for _ in range(args.rounds):
        for name, text, floor, _objects in frames:
            for i, fn in enumerate((orjson.loads, floor, wire.decode)):
                best[name][i] = min(best[name][i], per_call_ns(fn, text, args.number) - empty)
    rows = [(name, objects, *best[name]) for name, _text, _floor, objects in frames]
    if args.sort:
        rows.sort(key=lambda r: r[4] - r[3], reverse=True)
    print(
        f"ns per call, best of {args.rounds} interleaved rounds (timing overhead of {empty:.0f} ns taken off)"
    )
    print("x = times orjson.loads")
    print(f"{'frame':62} {'objs':>4} {'orjson':>7} {'floor':>7} {'x':>5} {'decode':>7} {'x':>5}")
    for name, objects, load, built, decode in rows:
        print(
            f"{name[:62]:62} {objects:4} {load:7.0f} {built:7.0f} {built / load:5.2f} "
            f"{decode:7.0f} {decode / load:5.2f}"
        )
    load, built, decode = (sum(r[i] for r in rows) for i in (2, 3, 4))
    print(
        f"{'sum over the frames':62} {'':4} {load:7.0f} {built:7.0f} {built / load:5.2f} "
        f"{decode:7.0f} {decode / load:5.2f}"
    )
    # The mix as bench/decode.py runs it: every frame in turn, 20 copies, median of per-round ratios.
    mix = [(text, floor) for _name, text, floor, _objects in frames] * 20
    runs: dict[str, list[float]] = {"orjson": [], "floor": [], "decode": []}
    for _ in range(args.rounds):
        runs["orjson"].append(mix_ns([(orjson.loads, text) for text, _ in mix]))
        runs["floor"].append(mix_ns([(floor, text) for text, floor in mix]))
        runs["decode"].append(mix_ns([(wire.decode, text) for text, _ in mix]))
    ratio = {
        k: statistics.median(a / b for a, b in zip(v, runs["orjson"], strict=True)) for k, v in runs.items()
    }
    print(f"\nthe fixtures mix ({len(mix)} messages a round, best ns/msg, median ratio to orjson.loads):")
    for k, v in runs.items():
        print(f"  {k:8} {min(v):7.0f} {ratio[k]:5.2f}x")


if __name__ == "__main__":
    main()
