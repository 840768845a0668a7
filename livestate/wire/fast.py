"""The decoder's fast path: structure a wire object without running its frozen ``__init__``.

A frozen slotted attrs ``__init__`` stores every field through ``object.__setattr__`` (about 55 ns a
field), and most wire classes have many optional fields of which a frame carries one or two: ``Part`` has
20. Instead, each eligible class gets a *builder*, an empty-slotted subclass whose attribute stores are
plain slot writes. The generated structuring function fills a builder, then assigns ``__class__`` back to
the frozen class (allowed: the subclass adds no slots, so the layouts are identical). The result is an
ordinary, frozen instance of the wire class, five times cheaper to make.

Only classes whose fields are plain (default ``None``, no validator, converter or factory) are eligible;
the others keep cattrs' generated function. The generated code takes the usual value of each field type
inline: a string, a boolean, an int32, an int64 as a number or a short decimal string, a non-negative
Duration (:func:`usual_duration`'s lines, no regular expression), an untyped object with no object or list in it
(nothing to walk for the depth limit), a list of strings, a list of one object. Anything else (a wrong
type, ``null``, a float where an int belongs, a nested untyped object) goes to the converter's own hook for
that field, so this path accepts exactly what the converter accepts. It raises whatever the hooks raise;
the codec then re-runs cattrs with detailed validation to name the field.
"""

from __future__ import annotations

import linecache
from collections.abc import Callable, Collection, Mapping
from types import UnionType
from typing import Any, Union, get_args, get_origin

import attrs
import cattrs

from livestate.wire.scalars import (
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    INT64_MIN,
    Duration,
    Int64,
    JsonObject,
    MessageIndex,
    WireValueError,
)

__all__ = ["builder_eligible", "make_builder_structure_fn", "none_assignment", "usual_duration"]

#: Decimal strings of up to this many digits are inside the int64 range (2**63 has 19).
_SHORT_DIGITS = 18


def builder_eligible(cls: type) -> bool:
    """Whether ``cls`` can be built field by field: slotted, no post-init, every field plain and ``None``."""
    if "__slots__" not in cls.__dict__ or hasattr(cls, "__attrs_post_init__"):
        return False
    return all(
        a.init and a.default is None and a.validator is None and a.converter is None
        for a in attrs.fields(cls)
    )


def _builder(cls: type) -> type:
    namespace = {
        "__slots__": (),
        # Both names map to one C slot (tp_setattro); overriding only one would leave the slow generic path.
        "__setattr__": object.__setattr__,
        "__delattr__": object.__delattr__,
        # The C slot too: Builder() is then cheaper than object.__new__(Builder), and runs no Python code.
        "__init__": object.__init__,
    }
    return type(f"_{cls.__name__}Builder", (cls,), namespace)


#: Whole seconds of up to this many digits are far inside a Duration's range (315,576,000,000 s).
_DURATION_WHOLE_DIGITS = 11


def _duration_lines(fallback: str) -> list[str]:
    """Lines that replace the text in ``v`` by its Duration when it has the usual form, ASCII digits and not
    negative (``"10s"``, ``"0.420s"``), and run ``fallback`` for any other value, valid or not (the hook,
    ``Duration.parse``, takes it from there). The builders inline them; :func:`usual_duration` is them too.
    """
    return [
        # ASCII first: str.isdigit() also accepts other scripts' digits, which the wire form does not.
        "if type(v) is str and v.isascii() and v[-1:] == 's':",
        "    w, p, f = v[:-1].partition('.')",
        f"    if w.isdigit() and len(w) <= {_DURATION_WHOLE_DIGITS} and (not p or f.isdigit() and len(f) <= 9):",
        "        d = DurationBuilder()",
        "        d.nanos = int(w + f.ljust(9, '0'))  # without a fraction, f is empty: whole seconds",
        "        d.text = v",
        "        d.__class__ = Duration",
        "        v = d",
        "    else:",
        f"        {fallback}",
        "else:",
        f"    {fallback}",
    ]


_DURATION_NAMES = {"DurationBuilder": _builder(Duration), "Duration": Duration}


def _make_usual_duration() -> Callable[[str], Duration | None]:
    lines = [
        "def usual_duration(v):",
        *(f"    {line}" for line in _duration_lines("return None")),
        "    return v",
    ]
    namespace = dict(_DURATION_NAMES)
    exec(compile("\n".join(lines) + "\n", "<livestate usual duration>", "exec"), namespace)
    function: Callable[[str], Duration | None] = namespace["usual_duration"]
    function.__doc__ = """``Duration.parse(text)`` for the usual form, ASCII digits and not negative
    (``"10s"``, ``"0.420s"``); None for any other text, valid or not, which the caller then gives to
    ``Duration.parse``. The builders run the same lines inline."""
    return function


usual_duration = _make_usual_duration()


def _not_an_object(value: Any) -> Any:
    raise WireValueError("expected an object")


def make_builder_structure_fn(
    cls: type,
    conv: cattrs.Converter,
    *,
    wire_names: Mapping[str, str],
    frame_level: Collection[str],
    normalise: Callable[[dict[str, Any]], dict[str, Any]] | None,
    nullable: bool,
    fallbacks: Mapping[str, Callable[[Any, Any], Any]] | None = None,
) -> Callable[..., Any]:
    """A structuring function ``(obj, _type=None, usage=None)`` for an eligible attrs class.

    ``wire_names`` maps field names to wire keys; fields in ``frame_level`` are not read from ``obj`` but
    set from the ``usage`` argument (``usageMetadata`` travels beside the message kind). ``normalise``,
    when given, rewrites an object that spells a field in snake_case (a field's Python name) into
    camelCase, and structuring starts over on the result. Unknown keys are ignored. ``nullable`` lets
    ``null`` structure to ``None``. ``fallbacks`` replaces the converter's hook of a field (by name): it
    gets the values the inline code does not take.
    """
    attrs.resolve_types(cls)
    name = f"structure_{cls.__name__}"
    namespace: dict[str, Any] = {
        "Builder": _builder(cls),
        "cls": cls,
        "not_an_object": _not_an_object,
        "normalise": normalise,
        # A field's Python name is also its snake_case wire spelling.
        "snake": frozenset(f for f, wire in wire_names.items() if f != wire) if normalise else frozenset(),
    }
    fields = [f for f in attrs.fields(cls) if f.name not in frame_level]
    lines = [
        f"def {name}(o, _=None, usage=None):",
        "    if type(o) is not dict:",
        "        return None if o is None else not_an_object(o)" if nullable else "        not_an_object(o)",
        "    b = Builder()",
    ]
    if fields:  # every field starts absent; the loop below fills in what the object holds
        lines.append("    " + none_assignment("b", [f.name for f in fields]))
    lines += [f"    b.{f} = usage" for f in frame_level]
    if fields:
        # One pass over the keys present (usually one or two) instead of a lookup per field (Part has 20).
        lines.append("    for k, v in o.items():")
        for index, field in enumerate(fields):
            namespace[f"h_{field.name}"] = (fallbacks or {}).get(field.name) or conv.get_structure_hook(
                field.type
            )
            namespace[f"t_{field.name}"] = field.type
            keyword = "if" if index == 0 else "elif"
            lines.append(f"        {keyword} k == {wire_names[field.name]!r}:")
            lines += [f"            {line}" for line in _value_lines(field, conv, namespace)]
            lines.append(f"            b.{field.name} = v")
        if namespace["snake"]:
            lines += ["        elif k in snake:", f"            return {name}(normalise(o), _, usage)"]
    lines += ["    b.__class__ = cls", "    return b"]
    source = "\n".join(lines) + "\n"
    filename = f"<livestate fast structure {cls.__module__}.{cls.__qualname__}>"
    exec(compile(source, filename, "exec"), namespace)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return namespace[name]  # type: ignore[no-any-return]


def none_assignment(target: str, names: list[str]) -> str:
    """A statement that sets each of ``names`` on ``target`` to None.

    Unpacking a constant tuple stores each field in two instructions; a chained ``a = b = None`` takes
    three (Part has 20 fields)."""
    if len(names) == 1:
        return f"{target}.{names[0]} = None"
    return ", ".join(f"{target}.{name}" for name in names) + f" = {(None,) * len(names)!r}"


def _value_lines(field: attrs.Attribute[Any], conv: cattrs.Converter, namespace: dict[str, Any]) -> list[str]:
    """Lines that turn ``v`` (the wire value) into the field value: the common case inline, the rest through
    the converter's hook for the field's type, which also handles ``None`` and reports errors."""
    name = field.name
    fallback = f"v = h_{name}(v, t_{name})"
    inner = _strip_optional(field.type)
    if inner is str or inner is bool:
        return [f"if type(v) is not {inner.__name__}:", f"    {fallback}"]
    if inner is int:
        return [f"if type(v) is not int or not {INT32_MIN} <= v <= {INT32_MAX}:", f"    {fallback}"]
    if inner is Int64 or inner is MessageIndex:  # NewTypes: the value is the int itself
        low = 0 if inner is MessageIndex else INT64_MIN
        return [
            f"if type(v) is not int or not {low} <= v <= {INT64_MAX}:",
            # proto3 JSON spells an int64 as a decimal string; one this short is surely in range.
            f"    if type(v) is str and len(v) <= {_SHORT_DIGITS} and v.isascii() and v.isdigit():",
            "        v = int(v)",
            "    else:",
            f"        {fallback}",
        ]
    if inner is Duration:
        namespace.update(_DURATION_NAMES)
        return _duration_lines(fallback)
    if inner == JsonObject:  # most objects are flat: no walk for the depth limit
        return [
            "if type(v) is dict:",
            "    for x in v.values():",
            "        if type(x) is dict or type(x) is list:",
            f"            {fallback}",
            "            break",
            "else:",
            f"    {fallback}",
        ]
    item = _tuple_item(inner)
    if item is str:
        return [
            "if type(v) is list:",
            "    for e in v:",
            "        if type(e) is not str:",
            f"            {fallback}",
            "            break",
            "    else:",
            "        v = tuple(v)",
            "else:",
            f"    {fallback}",
        ]
    if item is not None and attrs.has(item):
        namespace[f"i_{name}"] = conv.get_structure_hook(item)
        namespace[f"it_{name}"] = item
        # A list of one (a turn's one part) skips the comprehension, which costs as much as the element.
        each = f"i_{name}(e, it_{name})"
        return [
            "if type(v) is list:",
            f"    v = (i_{name}(v[0], it_{name}),) if len(v) == 1 else tuple([{each} for e in v])",
            "else:",
            f"    {fallback}",
        ]
    if inner is not field.type:  # an Optional: skip its wrapper, call the inner type's hook directly
        namespace[f"i_{name}"] = conv.get_structure_hook(inner)
        namespace[f"it_{name}"] = inner
        return ["if v is not None:", f"    v = i_{name}(v, it_{name})"]
    return [fallback]


def _strip_optional(kind: Any) -> Any:
    """``X`` for ``X | None``; any other type as it is."""
    args = get_args(kind)
    if get_origin(kind) in (Union, UnionType) and len(args) == 2 and type(None) in args:
        return args[0] if args[1] is type(None) else args[1]
    return kind


def _tuple_item(kind: Any) -> Any:
    """``X`` for ``tuple[X, ...]``, else None."""
    args = get_args(kind)
    return args[0] if get_origin(kind) is tuple and len(args) == 2 and args[1] is Ellipsis else None
