"""Snapshot persistence: a session snapshot, and a transport's buffered messages beside it, as JSON text.

A session outlives its process with these: ``save_state(session.snapshot(), buffer)`` on every handle update;
in the new process ``load_state(text)`` gives back the snapshot (for ``Session.restore``) and the buffer (for
the transport). ``snapshot_to_json`` / ``snapshot_from_json`` do the same for a snapshot alone (a store keeps
the payloads apart). The text holds the handle and the payloads: store it like a credential.

Reading is as strict as the journal (the wire codec's scalar hooks): a snapshot that does not fit raises
:class:`SnapshotError`, a :class:`~livestate.journal.JournalError` (these functions used to live in
:mod:`livestate.journal`, whose old names still import, with a ``DeprecationWarning``).
"""

from __future__ import annotations

import json

from livestate import wire
from livestate._records import CONVERTER, structure_message
from livestate.buffer import ReplayBuffer
from livestate.journal import JournalError
from livestate.record import HotFields
from livestate.session import Session, SessionSnapshot
from livestate.wire.codec import unstructure as unstructure_message

__all__ = [
    "SnapshotError",
    "hot_fields",
    "load_state",
    "save_state",
    "snapshot_from_json",
    "snapshot_to_json",
]


class SnapshotError(JournalError):
    """A snapshot, or saved state, that cannot be read (or written: a time that is not a finite number).

    A ``JournalError``, so code written when snapshots lived in the journal module still catches it. The
    message starts with ``snapshot:`` or ``state:`` and never quotes the text (it holds a handle)."""


def _dumps(value: object) -> str:
    # allow_nan=False: never write what the reader refuses (it takes finite numbers only).
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def save_state(snapshot: SessionSnapshot, buffer: ReplayBuffer) -> str:
    """A session snapshot and its transport's buffered messages, as JSON: all a new process needs to resume.

    Persist it on every handle update. It keeps the handle and the payloads: store it like a credential.
    ``SnapshotError`` if a time in the snapshot is not a finite number."""
    state = {
        "snapshot": CONVERTER.unstructure(snapshot),
        "buffer": [[seq, unstructure_message(message)] for seq, message in buffer.items()],
    }
    try:
        return _dumps(state)
    except ValueError as exc:
        raise SnapshotError(f"state: cannot encode: {exc}") from exc


def load_state(text: str | bytes) -> tuple[SessionSnapshot, ReplayBuffer]:
    """The inverse of :func:`save_state`: ``Session.restore(snapshot)`` and hand the buffer to the transport.

    ``SnapshotError`` when the text does not fit."""
    try:
        state = json.loads(text)
        snapshot = CONVERTER.structure(state["snapshot"], SessionSnapshot)
        items = [
            (CONVERTER.structure(seq, int), structure_message(frame, wire.ClientMessage))
            for seq, frame in state["buffer"]
        ]
    except Exception as exc:
        raise SnapshotError(f"state: {exc}") from exc
    return snapshot, ReplayBuffer.from_items(items)


def snapshot_to_json(snapshot: SessionSnapshot) -> str:
    """A snapshot as JSON text. It keeps the handle: store it like a credential.

    ``SnapshotError`` if a time in it is not a finite number."""
    try:
        return _dumps(CONVERTER.unstructure(snapshot))
    except ValueError as exc:
        raise SnapshotError(f"snapshot: cannot encode: {exc}") from exc


def snapshot_from_json(text: str | bytes) -> SessionSnapshot:
    """The inverse of :func:`snapshot_to_json`; ``SnapshotError`` when it does not fit."""
    try:
        snapshot: SessionSnapshot = CONVERTER.structure(json.loads(text), SessionSnapshot)
    except Exception as exc:
        raise SnapshotError(f"snapshot: {exc}") from exc
    return snapshot


def hot_fields(session: Session) -> HotFields:
    """What a send or server content changes in ``session`` (besides its window), read without a snapshot:
    a store writes these with a message instead of the whole snapshot (:mod:`livestate.store.layout`)."""
    return session._core.rec.hot_fields()
