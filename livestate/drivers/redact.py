"""Keeping secrets out of log records: API keys, bearer and token auth, key query parameters, and handles.

With DEBUG logging on, ``websockets`` logs every request header (``> x-goog-api-key: AIza…``,
``> Authorization: Bearer ya29…``), the request path with its query string, and the start and end of every
frame, so a ``setup`` carrying a resumption handle or a ``sessionResumptionUpdate`` shows (part of) the
handle. :class:`SecretFilter` masks all of these in a record before any handler sees it: it renders the
message once, with the payload of each frame argument masked in full (the rendered frame shows only its
start and end, so a handle can straddle the elision), masks the text, and stores the result as the record's
message with no arguments left; a traceback or stack is rendered and masked the same way.

Who installs it:

- The websockets driver and ``FakeLiveServer`` pass websockets a child logger, ``<parent>.livestate``
  (``websockets.client.livestate``, ``websockets.server.livestate``), made by :func:`redacting_logger`.
  The filter sits on that child, so records still reach the parent's handlers and obey its level, and no
  logger that livestate does not own is changed.
- The google-genai driver cannot choose the SDK's logger, so while one of its sessions is open it adds
  the filter to the ``websockets.client`` logger itself, through :func:`guard`, and takes it off again
  when the last one closes.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from websockets.frames import CTRL_OPCODES, Frame

__all__ = [
    "MASK",
    "SECRET_HEADERS",
    "SECRET_QUERY_PARAMETERS",
    "SecretFilter",
    "guard",
    "redact",
    "redacting_logger",
]

#: What a secret is replaced with.
MASK = "[redacted]"

#: Request and response headers whose values are credentials (case-insensitive). ``Authorization`` keeps
#: its scheme (``Bearer [redacted]``); ``x-goog-api-client`` and ``x-goog-user-project`` are not secrets.
SECRET_HEADERS = ("x-goog-api-key", "authorization", "proxy-authorization", "cookie", "set-cookie")

#: URL query parameters whose values are credentials (``?key=…`` is how Google APIs take a key in a URL).
SECRET_QUERY_PARAMETERS = ("key", "api_key", "access_token", "token")

_HANDLE_FIELDS = "newHandle|new_handle|handle"

_HEADER = re.compile(
    r"(?i)(?<![\w-])((?:" + "|".join(map(re.escape, SECRET_HEADERS)) + r")['\"]?\s*[:=]\s*['\"]?)"
    r"((?:bearer|token|basic)\s+)?[^\r\n'\"]+"
)
_QUERY = re.compile(r"(?i)([?&;](?:" + "|".join(map(re.escape, SECRET_QUERY_PARAMETERS)) + r")=)[^&\s'\"#;]+")
# A handle as a JSON or dict member ("newHandle": "…", 'handle': '…') or a keyword (handle='…'). The value
# may be cut short by the end of a fragment, so the closing quote is optional; a value already masked (in
# full, or its start in a frame's elided rendering) is left alone.
_HANDLE = re.compile(
    r"(?:(['\"])(?:" + _HANDLE_FIELDS + r")\1\s*:|\b(?:" + _HANDLE_FIELDS + r")\s*=)\s*(['\"])"
    r"(?!" + re.escape(MASK[:6]) + r")(?:(?!\2)[^\\]|\\.)*"
)
# Credentials recognisable by their shape alone, wherever they appear: Google API keys, OAuth access
# tokens, Gemini ephemeral tokens.
_SHAPES = re.compile(r"AIza[0-9A-Za-z_\-]{30,}|ya29\.[0-9A-Za-z_.\-]+|auth_tokens/[0-9A-Za-z_.\-]+")
# Cheap pre-checks for a frame payload: one without any of these has nothing to mask. Handle fields and
# credential shapes are matched as they are; header and query names in lowercase.
_FRAME_HINTS = (b"andle", b"AIza", b"ya29.", b"auth_tokens/")
_FRAME_HINTS_LOWER = (b"authorization", b"api-key", b"cookie", b"key=", b"token=")


def redact(text: str) -> str:
    """``text`` with every secret :data:`MASK`-ed: values of :data:`SECRET_HEADERS`, values of
    :data:`SECRET_QUERY_PARAMETERS` in URLs, resumption handles (``newHandle``/``handle`` members and
    keywords), and anything shaped like a Google API key, an OAuth access token or an ephemeral token."""
    text = _HEADER.sub(lambda m: m.group(1) + (m.group(2) or "") + MASK, text)
    text = _QUERY.sub(lambda m: m.group(1) + MASK, text)
    text = _HANDLE.sub(lambda m: m.group(0)[: m.end(2) - m.start()] + MASK, text)
    return _SHAPES.sub(MASK, text)


def _redact_frame(frame: Frame) -> Frame:
    """The frame with its payload masked, so its rendering (start ... end) cannot show part of a secret."""
    if frame.opcode in CTRL_OPCODES:  # close reasons and pings are shown whole, so the text pass sees them
        return frame
    data = bytes(frame.data)
    if not any(hint in data for hint in _FRAME_HINTS):
        lowered = data.lower()
        if not any(hint in lowered for hint in _FRAME_HINTS_LOWER):
            return frame
    text = data.decode("utf-8", errors="surrogateescape")
    masked = redact(text)
    if masked == text:
        return frame
    return replace(frame, data=masked.encode("utf-8", errors="surrogateescape"))


def _mask_arg(value: object) -> object:
    return _redact_frame(value) if isinstance(value, Frame) else value


class SecretFilter(logging.Filter):
    """A ``logging.Filter`` that masks secrets (see :func:`redact`) in every record it sees, and lets
    every record through.

    The record's message becomes the masked rendering and its ``args`` become ``()``, so neither
    ``record.getMessage()`` nor ``record.args`` holds a secret, and the objects websockets passed (frames,
    headers) are not kept alive by the record. ``exc_text`` and ``stack_info`` are rendered and masked too.
    Frames in the arguments are masked before rendering, in full; their ``[N bytes]`` is the masked
    payload's length."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask ``record`` in place; always ``True``."""
        args = record.args
        if args:
            if isinstance(args, Mapping):
                masked_args: Any = {key: _mask_arg(value) for key, value in args.items()}
            else:
                masked_args = tuple(_mask_arg(value) for value in args)
            try:
                text = str(record.msg) % masked_args
            except (TypeError, ValueError, KeyError):  # a bad format: logging would show msg and args
                text = f"{record.msg} {masked_args!r}"
        else:
            text = str(record.msg)
        record.msg = redact(text)
        record.args = ()
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _has_secret_filter(logger: logging.Logger) -> bool:
    return any(isinstance(f, SecretFilter) for f in logger.filters)


def redacting_logger(parent: logging.Logger) -> logging.Logger:
    """``parent``'s child ``<parent>.livestate``, carrying a :class:`SecretFilter`: the logger livestate
    gives websockets for its own connections. Records propagate to ``parent``'s handlers and follow its
    level; ``parent`` itself is not changed (its own filters do not see the child's records)."""
    child = parent.getChild("livestate")
    if not _has_secret_filter(child):
        child.addFilter(SecretFilter())
    return child


_guard_lock = threading.Lock()
_guards: dict[str, tuple[SecretFilter, int]] = {}


def guard(logger: logging.Logger) -> Callable[[], None]:
    """Add a :class:`SecretFilter` to ``logger`` (a logger livestate does not own, such as the
    ``websockets.client`` logger the google-genai SDK logs through) and return the function that releases
    it. The filter stays while any caller holds it, and is removed when the last one releases; releasing
    twice is harmless."""
    with _guard_lock:
        secret_filter, holders = _guards.get(logger.name, (SecretFilter(), 0))
        if holders == 0:
            logger.addFilter(secret_filter)
        _guards[logger.name] = (secret_filter, holders + 1)
    released = False

    def release() -> None:
        nonlocal released
        with _guard_lock:
            if released:
                return
            released = True
            secret_filter, holders = _guards[logger.name]
            if holders <= 1:
                del _guards[logger.name]
                logger.removeFilter(secret_filter)
            else:
                _guards[logger.name] = (secret_filter, holders - 1)

    return release
