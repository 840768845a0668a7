"""Decode cost per fixture frame against a bare ``orjson.loads``, and the floor of building the objects.

Usage: python bench/decode_floor.py [--number N] [--rounds R]

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
from livestate.wire.hooks import _nested_too_deep, to_camel  # noqa: E402
from livestate.wire.scalars import Duration  # noqa: E402

_BUILDERS: dict[type, type] = {}


def builder(cls: type) -> type:
    if cls not in _BUILDERS:
        _BUILDERS[cls] = _builder(cls)
    return _BUILDERS[cls]


class _Gen:
    def __init__(self, *, checked: bool) -> None:
        self.lines: list[str] = []
        self.namespace: dict[str, Any] = {"loads": orjson.loads}
        self.count = 0
        self.objects = 0
        self.checked = checked

    def check(self, condition: str) -> None:
        """In a checked floor, raise unless ``condition`` holds (as decode's fast path would fall back)."""
        if self.checked:
            self.lines.append(f"if not ({condition}): raise ValueError")

    def var(self) -> str:
        self.count += 1
        return f"x{self.count}"

    def ref(self, value: Any) -> str:
        name = f"c{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def value(self, result: Any, wire_expr: str, wire_value: Any) -> str:
        """An expression for ``result``, which the frame holds at ``wire_expr`` (as ``wire_value``)."""
        if self.checked and not attrs.has(type(result)):  # read once, then checked
            local = self.var()
            self.lines.append(f"{local} = {wire_expr}")
            wire_expr = local
        if type(result) is Duration:
            self.objects += 1
            v = self.var()
            whole, _, fraction = wire_value[:-1].partition(".")
            self.check(f"type({wire_expr}) is str and {wire_expr}.isascii() and {wire_expr}[-1:] == 's'")
            if self.checked:  # the checks of the usual form, as the fast path does them
                self.lines += [
                    f"w, p, f = {wire_expr}[:-1].partition('.')",
                    "if not (w.isdigit() and len(w) <= 11 and (not p or f.isdigit() and len(f) <= 9)): raise ValueError",
                ]
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
            self.check(f"type({wire_expr}) is list")
            if all(type(e) is str for e in result):
                if self.checked:
                    self.lines += [f"for e in {wire_expr}:", "    if type(e) is not str: raise ValueError"]
                return f"tuple({wire_expr})"
            items = [
                self.value(e, f"{wire_expr}[{i}]", w)
                for i, (e, w) in enumerate(zip(result, wire_value, strict=False))
            ]
            return "(" + "".join(f"{i}, " for i in items) + ")"
        if type(result) is int and type(wire_value) is str:
            self.check(f"len({wire_expr}) <= 18 and {wire_expr}.isascii() and {wire_expr}.isdigit()")
            return f"int({wire_expr})"
        if type(result) is dict and self.checked:  # an untyped object: flat, or walked for its depth
            self.check(f"type({wire_expr}) is dict")
            if any(type(x) in (dict, list) for x in wire_value.values()):
                self.check(f"not {self.ref(_nested_too_deep)}({wire_expr})")  # the walk decode makes
            else:
                self.lines += [
                    f"for x in {wire_expr}.values():",
                    "    if type(x) is dict or type(x) is list: raise ValueError",
                ]
        elif type(result) is int:
            self.check(f"type({wire_expr}) is int and -2147483648 <= {wire_expr} <= 2147483647")
        elif type(result) in (str, bool):
            self.check(f"type({wire_expr}) is {type(result).__name__}")
        return wire_expr  # a str, bool, int or untyped object: the parsed value itself

    def obj(self, result: Any, wire_expr: str, wire_value: dict[str, Any], usage: Any = None) -> str:
        self.objects += 1
        cls = type(result)
        v = self.var()
        if len(wire_value) > 1 or self.checked:  # read once
            local = self.var()
            self.lines.append(f"{local} = {wire_expr}")
            wire_expr = local
        self.check(f"type({wire_expr}) is dict")
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


def floor_function(frame: dict[str, Any], *, checked: bool = False) -> tuple[Callable[[str], Any], int]:
    """A function that loads this frame's text and builds exactly its decoded message, unchecked; and the
    number of objects it makes (attrs instances, Durations included).

    ``checked`` adds the checks decode's fast path makes of each value this frame holds (its type, an
    int's range, the usual form of a Duration, the flatness of an untyped object, each object's type):
    what is left between that and decode is finding each key's field (dispatch) and the calls."""
    message = wire.decode(json.dumps(frame))
    gen = _Gen(checked=checked)
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
    args = parser.parse_args()
    frames = []
    for name, frame in fixture_frames():
        floor, objects = floor_function(frame)
        checked, _ = floor_function(frame, checked=True)
        frames.append((name, json.dumps(frame), objects, (orjson.loads, floor, checked, wire.decode)))
    columns = ("orjson", "floor", "checked", "decode")
    empty = min(per_call_ns(lambda s: None, "", args.number) for _ in range(args.rounds))
    best = {name: [float("inf")] * len(columns) for name, *_ in frames}
    for _ in range(args.rounds):
        for name, text, _objects, fns in frames:
            for i, fn in enumerate(fns):
                best[name][i] = min(best[name][i], per_call_ns(fn, text, args.number) - empty)
    print(
        f"ns per call, best of {args.rounds} interleaved rounds (timing overhead of {empty:.0f} ns taken off);"
    )
    print(
        "floor: the objects built unchecked; checked: with decode's checks of each value; x: / orjson.loads"
    )
    header = f"{'frame':60} {'objs':>4} {'orjson':>6}" + "".join(f" {c:>7} {'x':>5}" for c in columns[1:])

    def row(label: str, objects: str, times: list[float]) -> str:
        return f"{label[:60]:60} {objects:>4} {times[0]:6.0f}" + "".join(
            f" {t:7.0f} {t / times[0]:5.2f}" for t in times[1:]
        )

    print(header)
    kinds: dict[str, list[float]] = {}
    for name, _text, objects, _fns in frames:
        print(row(name, str(objects), best[name]))
        kind = kinds.setdefault(name.split("_")[0], [0.0] * len(columns))
        kind[:] = [a + b for a, b in zip(kind, best[name], strict=True)]
    print("\nsummed by message kind (the first word of the fixture's name):")
    print(header)
    for kind, times in kinds.items():
        print(row(kind, "", times))
    print(row("all frames", "", [sum(t[i] for t in kinds.values()) for i in range(len(columns))]))
    # The mix as bench/decode.py runs it: every frame in turn, 20 copies, median of per-round ratios.
    mix = [(text, fns) for _name, text, _objects, fns in frames] * 20
    runs: dict[str, list[float]] = {c: [] for c in columns}
    for _ in range(args.rounds):
        for i, column in enumerate(columns):
            runs[column].append(mix_ns([(fns[i], text) for text, fns in mix]))
    print(f"\nthe fixtures mix ({len(mix)} messages a round; best ns/msg, median ratio to orjson.loads):")
    for column, times in runs.items():
        ratio = statistics.median(a / b for a, b in zip(times, runs["orjson"], strict=True))
        print(f"  {column:8} {min(times):7.0f} {ratio:5.2f}x")


if __name__ == "__main__":
    main()
