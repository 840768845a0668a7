"""The cattrs converters of the wire codec: camelCase names, strict scalar hooks, and the structure and
unstructure factories for every wire class.

Two converters share the hooks: ``FAST`` (no detailed validation; the decoder's first try) and ``DETAILED``
(detailed validation, to say exactly where a frame is wrong). The scalar hooks are strict (a string is a
string, a bool a bool) and are also what the journal checks its own scalars with.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import partial
from types import UnionType
from typing import Any, Final, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.cols import homogenous_tuple_structure_factory
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from livestate.wire.fast import builder_eligible, make_builder_structure_fn
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

__all__ = [
    "DETAILED",
    "FAST",
    "MAX_NESTING_DEPTH",
    "builder_structure_fn",
    "structure_bool",
    "structure_float",
    "structure_int32",
    "structure_integer",
    "structure_str",
    "to_camel",
    "to_snake",
]

#: How many levels of objects and arrays an untyped value may nest, counting the value itself: an opaque
#: field (``functionCall.args``, ``groundingMetadata``, a ``setup`` field kept in ``extra``) or a top-level
#: value of an unknown message. Deeper raises ProtocolError. Genuine frames nest a few levels; the bound
#: keeps every decoded message far inside what recursive code (the encoders, the journal) can walk.
MAX_NESTING_DEPTH: Final = 64


def to_camel(name: str) -> str:
    """``last_consumed_client_message_index`` → ``lastConsumedClientMessageIndex``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def to_snake(name: str) -> str:
    """``lastConsumedClientMessageIndex`` → ``last_consumed_client_message_index``."""
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, int | float):
        return repr(value)
    return "a list" if isinstance(value, list) else "an object"


# Strict scalar hooks. Each raises WireValueError, whose text becomes the ProtocolError message.


def _structure_str(value: Any, _: Any) -> str:
    if type(value) is not str:
        raise WireValueError(f"expected a string, got {_describe(value)}")
    return value


def _structure_optional_str(value: Any, _: Any) -> str | None:
    # The most common field type, inlined: one call instead of two.
    if value is None or type(value) is str:
        return value
    raise WireValueError(f"expected a string, got {_describe(value)}")


def _structure_bool(value: Any, _: Any) -> bool:
    if type(value) is not bool:
        raise WireValueError(f"expected a boolean, got {_describe(value)}")
    return value


def _structure_int32(value: Any, _: Any) -> int:
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is not int or not INT32_MIN <= value <= INT32_MAX:
        raise WireValueError(f"expected an int32, got {_describe(value)}")
    return value


def _structure_integer(value: Any, _: Any) -> int:
    # Not a wire type (the wire has int32 and int64): livestate's own records (seqs, counters, a seed).
    if type(value) is not int:
        raise WireValueError(f"expected an integer, got {_describe(value)}")
    return value


def _structure_float(value: Any, _: Any) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise WireValueError(f"expected a number, got {_describe(value)}")
    return float(value)


def _parse_int64(value: Any) -> int | None:
    if type(value) is str:
        digits = value[1:] if value[:1] == "-" else value
        if not (digits.isascii() and digits.isdigit()):
            return None
        value = int(value)
    elif type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is not int or not INT64_MIN <= value <= INT64_MAX:
        return None
    return value


def _structure_int64(value: Any, _: Any) -> Int64:
    parsed = _parse_int64(value)
    if parsed is None:
        raise WireValueError(f"expected an int64, got {_describe(value)}")
    return Int64(parsed)


def _structure_index(value: Any, _: Any) -> MessageIndex:
    parsed = _parse_int64(value)
    if parsed is None or parsed < 0:
        raise WireValueError(f"expected a non-negative int64, got {_describe(value)}")
    return MessageIndex(parsed)


def _structure_duration(value: Any, _: Any) -> Duration:
    if type(value) is not str:
        raise WireValueError(f"expected a duration string like '9.5s', got {_describe(value)}")
    return Duration.parse(value)


def _nested_too_deep(value: Any) -> bool:
    """Whether a parsed JSON value nests more than MAX_NESTING_DEPTH levels (the value itself is one)."""
    if type(value) is not dict and type(value) is not list:
        return False
    return not _nests_within(value, MAX_NESTING_DEPTH)


def _nests_within(container: dict[str, Any] | list[Any], levels: int) -> bool:
    """Whether ``container`` nests at most ``levels`` levels, counting itself. Recurses at most ``levels``
    deep, however deep the value goes: it stops at the first container past the limit."""
    for item in container.values() if type(container) is dict else container:
        if (type(item) is dict or type(item) is list) and (
            levels <= 1 or not _nests_within(item, levels - 1)
        ):
            return False
    return True


_TOO_DEEP = f"nested more than {MAX_NESTING_DEPTH} levels deep (the limit for an untyped value)"


def _too_deep_key(obj: dict[str, Any]) -> str | None:
    """The first key of ``obj`` whose value nests more than MAX_NESTING_DEPTH levels, or None."""
    return next((key for key, value in obj.items() if _nested_too_deep(value)), None)


def _structure_object(value: Any, _: Any) -> JsonObject:
    if type(value) is not dict:
        raise WireValueError(f"expected an object, got {_describe(value)}")
    if value and _nested_too_deep(value):
        raise WireValueError(_TOO_DEEP)
    return value


def _is_homogenous_tuple(t: Any) -> bool:
    args = get_args(t)
    return get_origin(t) is tuple and len(args) == 2 and args[1] is Ellipsis


def _tuple_factory(t: Any, conv: cattrs.Converter) -> Callable[[Any, Any], tuple[Any, ...]]:
    if conv.detailed_validation:  # cattrs' own, which names the failing index
        inner = homogenous_tuple_structure_factory(t, conv)

        def structure(value: Any, _: Any) -> tuple[Any, ...]:
            if type(value) is not list:
                raise WireValueError(f"expected a list, got {_describe(value)}")
            return inner(value, t)  # type: ignore[no-any-return]

        return structure

    item_type = get_args(t)[0]
    item = conv.get_structure_hook(item_type)

    def structure_fast(value: Any, _: Any) -> tuple[Any, ...]:
        if type(value) is not list:
            raise WireValueError(f"expected a list, got {_describe(value)}")
        return tuple([item(element, item_type) for element in value])

    return structure_fast


def _is_optional(t: Any) -> bool:
    args = get_args(t)
    return get_origin(t) in (Union, UnionType) and len(args) == 2 and type(None) in args


def _optional_factory(t: Any, conv: cattrs.Converter) -> Callable[[Any, Any], Any]:
    # cattrs' own Optional hook dispatches on every call; resolving the inner hook once is ~2x faster.
    inner_type = next(a for a in get_args(t) if a is not type(None))
    if inner_type is str:
        return _structure_optional_str
    if (
        attrs.has(inner_type) and inner_type is not Duration
    ):  # a nested message takes null itself: one call fewer
        return _attrs_structure_factory(inner_type, conv, nullable=True)
    inner = conv.get_structure_hook(inner_type)

    def structure(value: Any, _: Any) -> Any:
        return None if value is None else inner(value, inner_type)

    return structure


#: Fields kept beside the message kind in a frame, not inside its object.
_FRAME_LEVEL = frozenset({"usage_metadata"})


def _wire_fields(cls: type) -> list[attrs.Attribute[Any]]:
    return [a for a in attrs.fields(cls) if a.name not in _FRAME_LEVEL and a.name != "extra"]


def _camelize(obj: dict[str, Any], snake_to_camel: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = snake_to_camel.get(key, key)
        if name in out or (name != key and name in obj):
            raise WireValueError(f"field {name!r} given twice (also as {key!r})")
        out[name] = value
    return out


def builder_structure_fn(
    cls: type,
    conv: cattrs.Converter,
    *,
    nullable: bool = False,
    fallbacks: Mapping[str, Callable[[Any, Any], Any]] | None = None,
) -> Callable[..., Any]:
    """The fast path's structuring function of a builder-eligible class (see :mod:`livestate.wire.fast`),
    as the converter without detailed validation has it, but with ``fallbacks`` in place of the hooks of
    those fields (by name)."""
    fields = _wire_fields(cls)
    snake_to_camel = {a.name: to_camel(a.name) for a in fields if "_" in a.name}
    return make_builder_structure_fn(
        cls,
        conv,
        wire_names={a.name: to_camel(a.name) for a in fields},
        frame_level=[name for name in _FRAME_LEVEL if hasattr(cls, name)],
        normalise=partial(_camelize, snake_to_camel=snake_to_camel) if snake_to_camel else None,
        nullable=nullable,
        fallbacks=fallbacks,
    )


def _attrs_structure_factory(
    cls: type, conv: cattrs.Converter, *, nullable: bool = False
) -> Callable[[Any, Any], Any]:
    fields = _wire_fields(cls)
    snake_to_camel = {a.name: to_camel(a.name) for a in fields if "_" in a.name}
    if not conv.detailed_validation and builder_eligible(cls):
        return builder_structure_fn(cls, conv, nullable=nullable)
    renames: dict[str, Any] = {a.name: override(rename=to_camel(a.name)) for a in fields}
    renames.update({name: override(omit=True) for name in _FRAME_LEVEL if hasattr(cls, name)})
    has_extra = "extra" in attrs.fields_dict(cls)
    if has_extra:
        renames["extra"] = override(omit=True)
    generated: Callable[[Any, Any], Any] = make_dict_structure_fn(cls, conv, **renames)
    known = frozenset(to_camel(a.name) for a in fields)

    if has_extra:

        def structure_with_extra(obj: Any, _: Any) -> Any:
            if obj is None and nullable:
                return None
            if type(obj) is not dict:
                raise WireValueError(f"expected an object, got {_describe(obj)}")
            if "_" in "".join(obj):
                obj = _camelize(obj, snake_to_camel)
            result = generated(obj, cls)
            extra = {k: v for k, v in obj.items() if k not in known}
            if extra and (deep := _too_deep_key(extra)) is not None:
                raise WireValueError(f"field {deep!r} {_TOO_DEEP}")
            return attrs.evolve(result, extra=extra) if extra else result

        return structure_with_extra

    if not snake_to_camel:  # no field name has an underscore: no spelling to normalise

        def structure_plain(obj: Any, _: Any) -> Any:
            if obj is None and nullable:
                return None
            if type(obj) is not dict:
                raise WireValueError(f"expected an object, got {_describe(obj)}")
            return generated(obj, cls)

        return structure_plain

    def structure(obj: Any, _: Any) -> Any:
        if obj is None and nullable:
            return None
        if type(obj) is not dict:
            raise WireValueError(f"expected an object, got {_describe(obj)}")
        if not known.issuperset(obj) and "_" in "".join(obj):  # the common case skips the join
            obj = _camelize(obj, snake_to_camel)
        return generated(obj, cls)

    return structure


def _attrs_unstructure_factory(cls: type, conv: cattrs.Converter) -> Callable[[Any], Any]:
    renames: dict[str, Any] = {a.name: override(rename=to_camel(a.name)) for a in _wire_fields(cls)}
    renames.update({name: override(omit=True) for name in _FRAME_LEVEL if hasattr(cls, name)})
    has_extra = "extra" in attrs.fields_dict(cls)
    if has_extra:
        renames["extra"] = override(omit=True)
    generated: Callable[[Any], Any] = make_dict_unstructure_fn(
        cls, conv, _cattrs_omit_if_default=True, **renames
    )
    if not has_extra:
        return generated

    def unstructure(obj: Any) -> Any:
        out = generated(obj)
        out.update(obj.extra)
        return out

    return unstructure


def _make_converter(*, detailed: bool) -> cattrs.Converter:
    conv = cattrs.Converter(detailed_validation=detailed)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(int, _structure_int32)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(Int64, _structure_int64)
    conv.register_structure_hook(MessageIndex, _structure_index)
    conv.register_structure_hook(Duration, _structure_duration)
    conv.register_structure_hook_func(lambda t: t == JsonObject, _structure_object)
    conv.register_structure_hook_factory(_is_homogenous_tuple, _tuple_factory)
    conv.register_structure_hook_factory(_is_optional, _optional_factory)
    conv.register_structure_hook_factory(attrs.has, _attrs_structure_factory)
    conv.register_unstructure_hook(Int64, str)
    conv.register_unstructure_hook(MessageIndex, str)
    conv.register_unstructure_hook(Duration, lambda d: d.text)
    conv.register_unstructure_hook_factory(attrs.has, _attrs_unstructure_factory)
    return conv


_FAST = _make_converter(detailed=False)
_DETAILED = _make_converter(detailed=True)

#: The converter without detailed validation (the fast path) and the one with it (the error messages).
FAST = _FAST
DETAILED = _DETAILED
#: The strict scalar hooks, for other strict readers (the journal).
structure_str = _structure_str
structure_bool = _structure_bool
structure_int32 = _structure_int32
structure_float = _structure_float
#: An integral JSON number of any size (never a bool, a float or a string): not a wire type, but what
#: livestate's own records (journal events, snapshots) hold.
structure_integer = _structure_integer
