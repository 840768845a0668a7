"""The decoder's fast path: structure a wire object without running its frozen ``__init__``.

A frozen slotted attrs ``__init__`` stores every field through ``object.__setattr__`` (about 55 ns a
field), and most wire classes have many optional fields of which a frame carries one or two: ``Part`` has
20. Instead, each eligible class gets a *builder*, an empty-slotted subclass whose attribute stores are
plain slot writes. The generated structuring function fills a builder, then assigns ``__class__`` back to
the frozen class (allowed: the subclass adds no slots, so the layouts are identical). The result is an
ordinary, frozen instance of the wire class, five times cheaper to make.

Only classes whose fields are plain (default ``None``, no validator, converter or factory) are eligible;
the others keep cattrs' generated function. Anything unusual in a value (a wrong type, ``null``, a float
where an int belongs) goes to the converter's own hook for that field, so this path accepts exactly what
the converter accepts. It raises whatever the hooks raise; the codec then re-runs cattrs with detailed
validation to name the field.
"""

from __future__ import annotations

import linecache
from collections.abc import Callable, Collection, Mapping
from typing import Any, get_args

import attrs
import cattrs

from livestate.wire.scalars import INT32_MAX, INT32_MIN, WireValueError

__all__ = ["builder_eligible", "make_builder_structure_fn"]


def builder_eligible(cls: type) -> bool:
    """Whether ``cls`` can be built field by field: slotted, no post-init, every field plain and ``None``."""
    if "__slots__" not in cls.__dict__ or hasattr(cls, "__attrs_post_init__"):
        return False
    return all(
        a.init and a.default is None and a.validator is None and a.converter is None
        for a in attrs.fields(cls)
    )


def _builder(cls: type) -> type:
    # Both names map to one C slot (tp_setattro); overriding only one would leave the slow generic path.
    namespace = {"__slots__": (), "__setattr__": object.__setattr__, "__delattr__": object.__delattr__}
    return type(f"_{cls.__name__}Builder", (cls,), namespace)


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
) -> Callable[..., Any]:
    """A structuring function ``(obj, _type=None, usage=None)`` for an eligible attrs class.

    ``wire_names`` maps field names to wire keys; fields in ``frame_level`` are not read from ``obj`` but
    set from the ``usage`` argument (``usageMetadata`` travels beside the message kind). ``normalise``,
    when given, rewrites an object that spells a field in snake_case (a field's Python name) into
    camelCase, and structuring starts over on the result. Unknown keys are ignored. ``nullable`` lets
    ``null`` structure to ``None``.
    """
    attrs.resolve_types(cls)
    name = f"structure_{cls.__name__}"
    namespace: dict[str, Any] = {
        "new": object.__new__,
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
        "    b = new(Builder)",
    ]
    if fields:  # every field starts absent; the loop below fills in what the object holds
        lines.append("    " + " = ".join(f"b.{f.name}" for f in fields) + " = None")
    lines += [f"    b.{f} = usage" for f in frame_level]
    if fields:
        # One pass over the keys present (usually one or two) instead of a lookup per field (Part has 20).
        lines.append("    for k, v in o.items():")
        for index, field in enumerate(fields):
            namespace[f"h_{field.name}"] = conv.get_structure_hook(field.type)
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


def _value_lines(field: attrs.Attribute[Any], conv: cattrs.Converter, namespace: dict[str, Any]) -> list[str]:
    """Lines that turn ``v`` (the wire value) into the field value: the common case inline, the rest through
    the converter's hook for the field's type, which also handles ``None`` and reports errors."""
    fallback = f"v = h_{field.name}(v, t_{field.name})"
    inner = next((t for t in get_args(field.type) if t is not type(None)), field.type)
    if inner is str or inner is bool:
        return [f"if type(v) is not {inner.__name__}:", f"    {fallback}"]
    if inner is int:
        return [f"if type(v) is not int or not {INT32_MIN} <= v <= {INT32_MAX}:", f"    {fallback}"]
    item_args = get_args(inner)
    if len(item_args) == 2 and item_args[1] is Ellipsis and attrs.has(item_args[0]):
        namespace[f"i_{field.name}"] = conv.get_structure_hook(item_args[0])
        namespace[f"it_{field.name}"] = item_args[0]
        return [
            "if type(v) is list:",
            f"    v = tuple([i_{field.name}(e, it_{field.name}) for e in v])",
            "else:",
            f"    {fallback}",
        ]
    if inner is not field.type:  # an Optional: skip its wrapper, call the inner type's hook directly
        namespace[f"i_{field.name}"] = conv.get_structure_hook(inner)
        namespace[f"it_{field.name}"] = inner
        return ["if v is not None:", f"    v = i_{field.name}(v, it_{field.name})"]
    return [fallback]
