"""Scalar wire types: strict JSON scalars, proto3 int64, Duration and base64 payloads.

These are the leaves of the wire model. Each has a strict structuring rule in :mod:`livestate.wire.codec`:
a bool is a JSON boolean, a string is a JSON string, an int32 is an integral JSON number, an int64 is an
integral number or a decimal string (the proto3 JSON form), a Duration is ``"<seconds>[.<fraction>]s"``.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, NewType

import attrs

__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "INT64_MAX",
    "INT64_MIN",
    "Duration",
    "Int64",
    "JsonObject",
    "MessageIndex",
    "WireValueError",
    "b64_bytes",
]

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_DURATION_MAX_SECONDS = 315_576_000_000
_DURATION = re.compile(r"(-?)(\d+)(?:\.(\d{1,9}))?s", re.ASCII)
#: Nanoseconds per unit of a fraction with that many digits ("5" → 10⁸, "000000001" → 1).
_NANOS_PER_FRACTION_UNIT = tuple(10 ** (9 - digits) for digits in range(10))

#: A proto3 int64: an integral JSON number or a decimal string on the wire; emitted as a string.
Int64 = NewType("Int64", int)
#: A non-negative int64, used for ``lastConsumedClientMessageIndex``.
MessageIndex = NewType("MessageIndex", int)
#: An opaque JSON object (a protobuf Struct or a message livestate passes through untouched).
JsonObject = dict[str, Any]


class WireValueError(ValueError):
    """A scalar that breaks its wire type; the codec turns it into a ProtocolError with the field path."""


@attrs.frozen(order=True)
class Duration:
    """A protobuf Duration: exact nanoseconds, plus the text it came from so it round-trips unchanged.

    ``Duration.parse("9.5s").seconds == 9.5``; ``Duration.from_seconds(2.5).text == "2.5s"``.
    """

    #: Exact length in nanoseconds (may be negative; ``goAway.timeLeft`` rejects that separately).
    nanos: int
    #: The wire text, e.g. ``"3.000000001s"``.
    text: str = attrs.field(eq=False, order=False)

    @property
    def seconds(self) -> float:
        """The length in seconds, as a float (for arithmetic on ``at``)."""
        return self.nanos / 1e9

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse the proto3 JSON form; raise ``WireValueError`` for anything else."""
        match = _DURATION.fullmatch(text)
        if match is None:
            raise WireValueError(f"expected a duration like '9.5s', got {text!r}")
        sign, whole, fraction = match.groups()
        seconds = int(whole)
        if seconds > _DURATION_MAX_SECONDS:
            raise WireValueError(f"duration out of range: {text!r}")
        nanos = seconds * 1_000_000_000
        if fraction is not None:
            nanos += int(fraction) * _NANOS_PER_FRACTION_UNIT[len(fraction)]
        return cls(-nanos if sign else nanos, text)

    @classmethod
    def from_seconds(cls, seconds: float) -> Duration:
        """Build a Duration from seconds, rounded to the nanosecond."""
        return cls.from_nanos(round(seconds * 1e9))

    @classmethod
    def from_nanos(cls, nanos: int) -> Duration:
        """Build a Duration from nanoseconds, with the shortest exact wire text."""
        whole, fraction = divmod(abs(nanos), 1_000_000_000)
        text = f"{'-' if nanos < 0 else ''}{whole}"
        if fraction:
            text += "." + f"{fraction:09d}".rstrip("0")
        return cls(nanos, text + "s")


def b64_bytes(data: str) -> bytes:
    """Decode a base64 payload (standard or URL-safe alphabet); raise ``WireValueError`` if it is not one."""
    try:
        if "-" in data or "_" in data:
            return base64.urlsafe_b64decode(data)
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WireValueError(f"expected base64 data: {exc}") from None


def compact_repr(self: Any) -> str:
    """``Kind(field=value, …)`` with absent (``None``) fields left out; secret and payload fields keep their
    field-level repr rules (a handle never shows, base64 shows as its length)."""
    parts = []
    for field in attrs.fields(type(self)):
        value = getattr(self, field.name)
        if value is None or (field.name == "extra" and not value):
            continue
        if field.repr is False:
            shown = "<hidden>"
        else:
            shown = field.repr(value) if callable(field.repr) else repr(value)
        parts.append(f"{field.name}={shown}")
    return f"{type(self).__name__}({', '.join(parts)})"
