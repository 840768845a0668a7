"""The cattrs converter for livestate's own JSON records: journal events and headers, snapshots, saved state.

It is as strict as the wire codec because it uses the wire codec's own scalar hooks
(:mod:`livestate.wire.hooks`): a string is a JSON string, a bool a JSON boolean, a float a finite JSON number,
an int an integral JSON number. Timers are written as their value, and wire messages go through the wire
codec (camelCase, as on the wire). Field names are Python's: these records are livestate's, not the wire's.
Unknown fields are an error.
"""

from __future__ import annotations

from typing import Any

import cattrs

from livestate import wire
from livestate.errors import LiveStateError
from livestate.events import Timer
from livestate.wire.codec import structure_client, structure_server
from livestate.wire.codec import unstructure as unstructure_message
from livestate.wire.hooks import structure_bool, structure_float, structure_integer, structure_str
from livestate.wire.scalars import WireValueError

__all__ = ["CONVERTER", "describe_problem", "structure_message"]

_MESSAGE_TYPES = (wire.ServerMessage, wire.ClientMessage, wire.Setup)


def _is_message_type(type_: Any) -> bool:
    return any(type_ == m for m in _MESSAGE_TYPES)


def structure_message(value: Any, type_: Any) -> Any:
    """A wire message of ``type_`` (``wire.ServerMessage``, ``wire.ClientMessage`` or ``wire.Setup``) from its
    JSON object. ``WireValueError`` for anything but an object; ``ProtocolError`` naming the wire field for
    a bad one."""
    if not isinstance(value, dict):
        raise WireValueError(f"expected a message object, got {type(value).__name__}")
    if type_ == wire.ServerMessage:  # a server frame holding only an unknown "setup" key is not a Setup
        return structure_server(value)
    message = structure_client(value)
    if type_ is wire.Setup and not isinstance(message, wire.Setup):
        raise WireValueError("expected a setup message")
    return message


def describe_problem(exc: BaseException, type_: Any) -> str:
    """One problem cattrs found, as text: a strict hook's own message, or cattrs' description."""
    if isinstance(exc, WireValueError | LiveStateError):  # a ProtocolError already names the wire field
        return str(exc)
    return cattrs.v.format_exception(exc, type_)


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_unstructure_hook(Timer, lambda t: t.value)
    conv.register_structure_hook(Timer, lambda v, _: Timer(v))
    conv.register_unstructure_hook_func(_is_message_type, unstructure_message)
    conv.register_structure_hook_func(_is_message_type, structure_message)
    conv.register_structure_hook(float, structure_float)
    conv.register_structure_hook(int, structure_integer)
    conv.register_structure_hook(bool, structure_bool)
    conv.register_structure_hook(str, structure_str)
    return conv


#: The one converter for journal lines, journal headers (the session's config), snapshots and saved state.
CONVERTER = _make_converter()
