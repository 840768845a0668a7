"""JSON in and out for the wire codec: orjson when installed, else the standard library made to agree with it.

Both paths accept the same documents and parse them to the same values: lone UTF-16 surrogates and numbers
beyond the float range are refused, and an integer beyond 64 bits reads as a float, as orjson does. The
standard-library path calls the JSON decoder's C scanner directly (``json.loads`` spends most of a short
frame's time on whitespace regexes and wrappers).
"""

from __future__ import annotations

import json
import json.scanner
import math
import re
from collections.abc import Callable
from typing import Any

from livestate.wire.scalars import (
    INT64_MIN,
)

__all__ = ["dumps", "loads", "stdlib_dumps", "stdlib_loads"]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # orjson rejects these ("number is infinity when parsed as double")
        raise ValueError(f"number out of range: {text[:40]}")
    return value


_UINT64_MAX = 2**64 - 1


def _int_as_orjson(text: str) -> int | float:
    # orjson reads an integer beyond int64/uint64 as a double; a short one (every usual count) fits.
    if len(text) < 19:
        return int(text)
    value = int(text) if len(text) < 400 else None  # longer ones are infinite as doubles anyway
    if value is not None and INT64_MIN <= value <= _UINT64_MAX:
        return value
    return _finite_float(text)


_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
#: A run of backslashes, then "u" and a surrogate's hex digits: an escape if the run is odd. Group 2 is
#: the third hex digit, 8 to b for a high surrogate, c to f for a low one.
_SURROGATE_ESCAPE = re.compile(r"(\\+)u[dD]([89a-fA-F])[0-9a-fA-F]{2}")


def _has_lone_surrogate_escape(text: str) -> bool:
    """Whether JSON text escapes a lone UTF-16 surrogate: a high one not directly followed by a low one, or
    a low one not directly after a high one.

    Checked on the text, not the parsed value, because a duplicate key can drop the string that held it
    (orjson still rejects that document)."""
    unpaired_high_end = -1  # where the escape of a high surrogate still waiting for its low one ends
    for match in _SURROGATE_ESCAPE.finditer(text):
        if len(match[1]) % 2 == 0:  # an escaped backslash, then the letters "ud...": not an escape
            continue
        escape_start = match.end(1) - 1
        if match[2] in "89abAB":
            if unpaired_high_end >= 0:
                return True
            unpaired_high_end = match.end()
        elif unpaired_high_end != escape_start:
            return True
        else:
            unpaired_high_end = -1
    return unpaired_high_end >= 0


_json_decoder = json.JSONDecoder(
    parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_int_as_orjson
)
_json_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
# typeshed types the context argument as a scanner; it is the decoder whose settings the scanner copies.
_scan_value = json.scanner.make_scanner(_json_decoder)  # type: ignore[arg-type]
_JSON_WHITESPACE = " \t\n\r"


def stdlib_loads(data: bytes | str) -> Any:
    """Parse one UTF-8 JSON document with the standard library, to the same value orjson gives. Raises
    ValueError for what orjson rejects and Python's JSON would let through: NaN and Infinity, numbers beyond
    the float range, and lone surrogates (escaped or raw); an integer beyond 64 bits becomes a float.

    Calls the decoder's C scanner directly: ``json.loads`` spends more time finding where the document
    starts and ends (two regular expressions) than a short frame takes to scan. Anything the direct call
    cannot settle (leading whitespace, trailing data) goes through the full decoder, which also words
    the errors.
    """
    if isinstance(data, bytes | bytearray):
        text = data.decode("utf-8")  # strict UTF-8 holds no surrogate
    elif not data.isascii() and _LONE_SURROGATE.search(data):
        raise ValueError("a surrogate in the text, which is then not UTF-8")  # as orjson says
    else:
        text = data
    # A memchr rules the check out for the usual frame: base64 audio has no backslash.
    if "\\" in text and _has_lone_surrogate_escape(text):
        raise ValueError("lone surrogate escaped in a string")
    try:
        obj, end = _scan_value(text, 0)
    except StopIteration:
        return _json_decoder.decode(text)
    if end != len(text) and text[end:].strip(_JSON_WHITESPACE):
        return _json_decoder.decode(text)
    return obj


def stdlib_dumps(obj: Any) -> str:
    """Compact JSON with the standard library. Raises TypeError for a lone surrogate in a string, which
    could not be sent as UTF-8 (orjson refuses it too)."""
    text = _json_encoder.encode(obj)
    if not text.isascii() and _LONE_SURROGATE.search(text):
        raise TypeError("str is not valid UTF-8: surrogates not allowed")
    return text


_loads: Callable[[bytes | str], Any]
try:
    import orjson

    _loads = orjson.loads

    def _dumps(obj: Any) -> str:
        return orjson.dumps(obj).decode()

except ImportError:  # pragma: no cover - exercised only without the optional speed-up
    _loads, _dumps = stdlib_loads, stdlib_dumps

#: The JSON parser and serialiser the codec uses.
loads = _loads
dumps = _dumps
