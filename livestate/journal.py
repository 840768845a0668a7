"""The event log: JSON Lines encoding of every event, and journals as session recorders.

A journal file is a header line (format version, livestate version, the session's configuration, whether it
is redacted) followed by one event per line. ``Journal`` is a recorder: give it to ``Session(config,
recorder=journal)`` and it appends each event as the session handles it, holding nothing in memory.

Redaction is the default: a handle becomes a stable fingerprint (``sha256:…``), and an audio or video payload
becomes its length. A redacted journal replays to the same states and decisions (payloads decode as filler of
the same length, so buffer limits replay too). ``include_secrets=True`` keeps everything, for moving a
session elsewhere.

A journal never holds a line that cannot be read back, nor an event it failed to record: an event that
cannot be encoded is refused before anything is written, and a failed write (a full disk) is cut back off
the file, or where that cannot be done left as a last line without its newline, which :func:`read_journal`
reports and skips. Either way the recorder raises :class:`JournalError` and the session undoes the event.

Snapshots (``save_state``, ``load_state``, ``snapshot_to_json``, ``snapshot_from_json``) live in
:mod:`livestate.snapshots`; their old names here still work, with a ``DeprecationWarning``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

import attrs
import cattrs

from livestate._records import CONVERTER, describe_problem
from livestate.errors import LiveStateError, ProtocolError
from livestate.events import (
    CloseRequested,
    Connect,
    ConnectionClosed,
    ConnectionOpened,
    DiscardRequested,
    Event,
    MessageReceived,
    SendRequested,
    TimerFired,
    TransportFailed,
)
from livestate.policy import SessionConfig
from livestate.wire.codec import structure_client
from livestate.wire.codec import unstructure as unstructure_message

if TYPE_CHECKING:  # the deprecated names, for type checkers; at run time __getattr__ finds them
    from livestate.snapshots import load_state as load_state
    from livestate.snapshots import save_state as save_state
    from livestate.snapshots import snapshot_from_json as snapshot_from_json
    from livestate.snapshots import snapshot_to_json as snapshot_to_json

__all__ = [
    "FORMAT_VERSION",
    "Journal",
    "JournalContents",
    "JournalError",
    "decode_event",
    "encode_event",
    "fingerprint",
    "read_journal",
]

#: The journal format this livestate writes and the newest it reads.
FORMAT_VERSION: Final = 1
_FORMAT = "livestate-journal"
_REDACTED_KEY = "redactedLength"
_FINGERPRINT = re.compile(r"sha256:[0-9a-f]{16}")
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


class JournalError(LiveStateError):
    """A journal line that cannot be read, or an event a :class:`Journal` could not write (a snapshot that
    cannot be read is a :class:`~livestate.snapshots.SnapshotError`, a subclass).

    The message names the line and the field, or the journal and what went wrong; a failed write is
    chained from the ``OSError``."""


#: Names that moved to :mod:`livestate.snapshots`; importing them from here warns.
_MOVED_TO_SNAPSHOTS: Final = frozenset({"save_state", "load_state", "snapshot_to_json", "snapshot_from_json"})


def __getattr__(name: str) -> Any:
    if name in _MOVED_TO_SNAPSHOTS:
        warnings.warn(
            f"livestate.journal.{name} is deprecated: use livestate.snapshots.{name}",
            DeprecationWarning,
            stacklevel=2,
        )
        from livestate import snapshots

        return getattr(snapshots, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def fingerprint(handle: str) -> str:
    """A stable, non-reversible stand-in for a handle: the same handle always gives the same text.
    A fingerprint is its own fingerprint, so a redacted journal shows the same one everywhere."""
    if _FINGERPRINT.fullmatch(handle):
        return handle
    return "sha256:" + hashlib.sha256(handle.encode()).hexdigest()[:16]


_EVENTS: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        Connect,
        ConnectionOpened,
        MessageReceived,
        SendRequested,
        ConnectionClosed,
        TimerFired,
        CloseRequested,
        DiscardRequested,
        TransportFailed,
    )
}


def _redact_frame(frame: Any) -> Any:
    """Replace handles by fingerprints and base64 payloads by their length, anywhere in a frame."""
    if isinstance(frame, dict):
        out: dict[str, Any] = {}
        for key, value in frame.items():
            if key in ("newHandle", "handle") and isinstance(value, str) and value:
                out[key] = fingerprint(value)
            elif key == "data" and isinstance(value, str):
                out[key] = {_REDACTED_KEY: len(value)}
            else:
                out[key] = _redact_frame(value)
        return out
    if isinstance(frame, list):
        return [_redact_frame(item) for item in frame]
    return frame


def _unredact_frame(frame: Any) -> Any:
    """Turn redacted payloads back into filler of the same length, so the frame decodes."""
    if isinstance(frame, dict):
        if set(frame) == {_REDACTED_KEY} and isinstance(frame[_REDACTED_KEY], int):
            return "A" * frame[_REDACTED_KEY]
        return {key: _unredact_frame(value) for key, value in frame.items()}
    if isinstance(frame, list):
        return [_unredact_frame(item) for item in frame]
    return frame


def encode_event(event: Event, *, include_secrets: bool = False) -> dict[str, Any]:
    """One event as a JSON-ready object: ``{"event": "<kind>", "at": …, …}``."""
    body: dict[str, Any] = {"event": type(event).__name__}
    body.update(CONVERTER.unstructure(event))
    if not include_secrets and "message" in body:
        body["message"] = _redact_frame(body["message"])
    return body


def decode_event(obj: Any, *, line: int | None = None) -> Event:
    """The inverse of :func:`encode_event`; ``JournalError`` naming the line and field when it does not fit."""
    where = f"line {line}: " if line is not None else ""
    if not isinstance(obj, dict):
        raise JournalError(f"{where}expected an event object, got {type(obj).__name__}")
    kind = obj.get("event")
    cls = _EVENTS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise JournalError(f"{where}event: unknown event kind {kind!r} (known: {', '.join(_EVENTS)})")
    fields = {k: v for k, v in obj.items() if k != "event"}
    try:
        if "message" in fields:
            fields["message"] = _unredact_frame(fields["message"])
        event: Event = CONVERTER.structure(fields, cls)
        return event
    except Exception as exc:
        problems = (
            cattrs.transform_error(exc, path="", format_exception=describe_problem)
            if isinstance(exc, cattrs.BaseValidationError)
            else [str(exc)]
        )
        detail = "; ".join(_name_field(p) for p in problems)
        raise JournalError(f"{where}{kind}: {detail}") from exc


def _name_field(problem: str) -> str:
    message, _, path = problem.rpartition(" @ ")
    if not message:
        return problem
    return f"{path.lstrip('.')}: {message}" if path else message


@attrs.frozen(kw_only=True)
class JournalContents:
    """What a journal file holds."""

    config: SessionConfig
    redacted: bool
    events: tuple[Event, ...]
    #: The last line had no newline (a crash or a failed write cut it off): it was skipped, everything
    #: before it recovered.
    truncated: bool
    livestate_version: str


def _header(config: SessionConfig, *, include_secrets: bool) -> dict[str, Any]:
    from livestate import __version__

    return {
        "format": _FORMAT,
        "version": FORMAT_VERSION,
        "livestate": __version__,
        "redacted": not include_secrets,
        "config": CONVERTER.unstructure(config),
    }


def _read_header(obj: Any) -> tuple[SessionConfig, bool, str]:
    if not isinstance(obj, dict) or obj.get("format") != _FORMAT:
        raise JournalError("line 1: not a livestate journal header")
    version = obj.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise JournalError(
            f"line 1: version: journal format {version!r} is not supported (this livestate reads up to "
            f"{FORMAT_VERSION}); upgrade livestate"
        )
    try:
        config = CONVERTER.structure(obj.get("config"), SessionConfig)
    except Exception as exc:
        raise JournalError(f"line 1: config: {exc}") from exc
    return config, bool(obj.get("redacted", True)), str(obj.get("livestate", "?"))


def iter_lines(stream: IO[Any]) -> Iterator[tuple[int, str | bytes, bool]]:
    """``(line number, text, ends with a newline)`` for each non-empty line."""
    for number, text in enumerate(stream, start=1):
        if text.strip():
            yield number, text, text.endswith(b"\n" if isinstance(text, bytes) else "\n")


def _parse_line(text: str | bytes) -> Any:
    """One line's JSON; ValueError saying why not."""
    try:
        return json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except json.JSONDecodeError as exc:
        raise ValueError(exc.msg) from None
    except UnicodeDecodeError:  # a line cut inside a multi-byte character, or not text at all
        raise ValueError("not UTF-8") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None


def read_journal(source: str | Path | IO[str] | IO[bytes]) -> JournalContents:
    """Read a whole journal from a path (or an open stream, read to its end).

    ``JournalError`` for anything but a last line without its newline (cut off by a crash or a failed write),
    which is skipped and reported as ``truncated``."""
    if isinstance(source, str | Path):
        with Path(source).open("rb") as stream:  # bytes: a cut-off line may end inside a UTF-8 character
            lines = list(iter_lines(stream))
    else:
        lines = list(iter_lines(source))
    if not lines:
        raise JournalError("line 1: empty journal, no header")
    parsed: list[tuple[int, Any]] = []
    truncated = False
    for position, (number, text, complete) in enumerate(lines):
        if position == len(lines) - 1 and not complete and position > 0:
            # A line counts once its newline is written: without it, its write failed or was cut short,
            # and a session whose recorder failed undid that event, even if the text before is whole.
            truncated = True
            break
        try:
            parsed.append((number, _parse_line(text)))
        except ValueError as exc:
            raise JournalError(f"line {number}: not valid JSON ({exc})") from None
    config, redacted, version = _read_header(parsed[0][1])
    events = tuple(decode_event(obj, line=number) for number, obj in parsed[1:])
    return JournalContents(
        config=config, redacted=redacted, events=events, truncated=truncated, livestate_version=version
    )


class Journal:
    """A session recorder that appends each event to a JSON Lines file as it happens.

    ``Journal.create(path, config)`` writes the header; the journal is then callable with an event. Each
    line goes to the file at once (the file is unbuffered), so a crash loses at most the line being written.
    Memory stays flat. ``Journal(stream)`` writes events without a header to an open stream, binary (as
    ``create`` does) or text.

    A write that fails (a full disk) raises ``JournalError``, and the session that called it undoes the
    event. The journal keeps nothing of that line: on a seekable binary stream (every ``create``d file) the
    part that reached the file is cut back off and the journal goes on once there is room. Where that is not
    possible (a text stream, a pipe) the cut-off line stays last, :func:`read_journal` skips it, and the
    journal refuses every later event; a text stream may still write the rest of the line when closed.
    """

    def __init__(
        self, stream: IO[str] | IO[bytes], *, include_secrets: bool = False, name: str | None = None
    ) -> None:
        self._stream: IO[Any] = stream
        self._binary = isinstance(stream, io.RawIOBase | io.BufferedIOBase)
        self.include_secrets = include_secrets
        #: What errors call this journal: its path, else the stream's ``name``, else the stream's type.
        self.name = name if name is not None else str(getattr(stream, "name", type(stream).__name__))
        #: Lines written so far (the header counts), so an error can say which line failed.
        self.lines = 0
        self._failure: BaseException | None = None

    @classmethod
    def create(
        cls,
        target: str | Path | IO[str] | IO[bytes],
        config: SessionConfig,
        *,
        include_secrets: bool = False,
    ) -> Journal:
        """Open ``target`` for writing (a path, or an open stream) and write the header.

        Raises ``JournalError`` when the header cannot be written."""
        if not isinstance(target, str | Path):
            journal = cls(target, include_secrets=include_secrets)
            journal._write(lambda: _header(config, include_secrets=include_secrets), "the header")
            return journal
        stream = Path(target).open("wb", buffering=0)  # noqa: SIM115 - the Journal's, closed by close()
        journal = cls(stream, include_secrets=include_secrets, name=str(target))
        try:
            journal._write(lambda: _header(config, include_secrets=include_secrets), "the header")
        except JournalError:
            journal.close()
            raise
        return journal

    def __call__(self, event: Event) -> None:
        """Append ``event`` as one line.

        Raises ``JournalError`` when it cannot, and then holds nothing of the event: it does not encode, or
        would not read back (nothing was written), or the write failed (chained from the ``OSError``, e.g. a full disk). After a
        failed write that could not be taken back, every later call raises ``JournalError`` too.
        """
        self._write(lambda: self._encode(event), type(event).__name__)

    def _encode(self, event: Event) -> dict[str, Any]:
        if isinstance(event, SendRequested):
            # The application built this message; reading it back holds it to the decoder's rules (a
            # function response nested past MAX_NESTING_DEPTH): refuse now rather than write a dead line.
            structure_client(unstructure_message(event.message))
        return encode_event(event, include_secrets=self.include_secrets)

    def _write(self, encode: Callable[[], dict[str, Any]], what: str) -> None:
        if self._failure is not None:
            raise JournalError(
                f"journal {self.name}: not writing {what}: writing line {self.lines + 1} failed earlier "
                f"({self._failure}) and it may be cut off; record on in a new journal"
            ) from self._failure
        try:
            obj = encode()
            # allow_nan=False: a time that is not a finite number would not read back.
            line = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            if not line.isascii() and _LONE_SURROGATE.search(line):
                # Neither the decoder nor Session.send lets one through, but an event built by hand may:
                # escaped, it still reads back, and the file stays UTF-8.
                line = json.dumps(obj, separators=(",", ":"), allow_nan=False)
            line += "\n"
            data = line.encode("utf-8") if self._binary else b""
        except (ValueError, TypeError, RecursionError, ProtocolError) as exc:
            raise JournalError(f"journal {self.name}: cannot encode {what}: {exc}") from exc
        start: int | None = None
        try:
            if self._binary:
                start = self._stream.tell() if self._stream.seekable() else None
                _write_all(self._stream, data)
            else:
                self._stream.write(line)  # one call: the line is whole, or cut off and last
                self._stream.flush()
        except (OSError, ValueError) as exc:  # ValueError: the stream is closed
            if start is not None and self._cut_back(start):
                raise JournalError(
                    f"journal {self.name}: writing line {self.lines + 1} ({what}) failed: {exc}; nothing of "
                    "it was kept, and the journal goes on"
                ) from exc
            self._failure = exc
            raise JournalError(
                f"journal {self.name}: writing line {self.lines + 1} ({what}) failed: {exc}; the lines "
                "before it are intact, this one may be cut off (read_journal skips it), and the journal takes "
                "no more events"
            ) from exc
        self.lines += 1

    def _cut_back(self, size: int) -> bool:
        """Cut the binary stream back to ``size`` bytes, dropping a partly written line. False if it fails."""
        try:
            self._stream.truncate(size)
            self._stream.seek(size)
        except (OSError, ValueError):
            return False
        return True

    def close(self) -> None:
        """Close the stream. After a failed write, an error closing it (flushing the rest of the line) is not
        raised again."""
        if self._failure is None:
            self._stream.close()
            return
        with contextlib.suppress(OSError):
            self._stream.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _write_all(stream: IO[bytes], data: bytes) -> None:
    """Write all of ``data`` and flush: an unbuffered file may take part of it (a filling disk), then fail."""
    view = memoryview(data)
    while view:
        written = stream.write(view)
        if not written:
            raise OSError(errno.EIO, "the stream took none of the line")
        view = view[written:]
    stream.flush()
