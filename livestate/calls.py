"""Tool-call tracking: which function calls are pending, which a resume orphaned, what an answer answers.

Pure helpers over the session's own containers (a dict of pending calls by id, an ordered set of orphaned
ids). They return data (generations, ids) and never emit commands: only ``Session`` turns results into
commands and notices.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from livestate import wire
from livestate.errors import ProtocolError

__all__ = [
    "PendingCall",
    "add_calls",
    "answer_calls",
    "answers_only_orphans",
    "call_key",
    "cancel_calls",
    "remember_orphans",
    "split_orphans",
]

#: Pending calls by key: the call's id, or for an id-less call (Vertex sometimes sends them) a tuple of its
#: own, so an answer is found in O(1) by id.
Pending = dict[object, "PendingCall"]


@attrs.frozen
class PendingCall:
    """A function call the model issued and the application has not answered."""

    id: str | None
    name: str | None
    #: How many handles had been stored when the call arrived: a resume from an older handle orphans it.
    generation: int


def call_key(call: PendingCall) -> object:
    """Calls are found by id; an id-less call gets a key of its own (a tuple, told apart from ids)."""
    return call.id if call.id is not None else (call.name, object())


def add_calls(pending: Pending, calls: Sequence[wire.FunctionCall], generation: int, limit: int) -> None:
    """Track ``calls``, issued when ``generation`` handles had been stored. ``ProtocolError`` (nothing
    tracked) when that would leave more than ``limit`` pending."""
    if len(calls) > limit - len(pending):
        raise ProtocolError(
            f"toolCall.functionCalls: {len(calls)} more calls with {len(pending)} pending "
            f"is past SessionConfig.max_pending_calls ({limit})"
        )
    for fc in calls:
        call = PendingCall(fc.id, fc.name, generation)
        pending[call_key(call)] = call


def cancel_calls(pending: Pending, ids: Sequence[str]) -> None:
    """The server cancelled these calls: they are no longer pending."""
    for call_id in ids:
        pending.pop(call_id, None)


def answers_only_orphans(pending: Pending, orphaned: dict[str, None], response: wire.ToolResponse) -> bool:
    """Whether every answer in ``response`` is to a call a resume orphaned (and nothing pending)."""
    ids = [fr.id for fr in response.function_responses or ()]
    return bool(ids) and all(i is not None and i in orphaned and i not in pending for i in ids)


def answer_calls(pending: Pending, response: wire.ToolResponse) -> tuple[int | None, tuple[str, ...]]:
    """Take the calls ``response`` answers off ``pending``. Returns the generation of the oldest call it
    answered (``None`` if none was pending) and the ids it names."""
    generation: int | None = None
    ids = []
    for fr in response.function_responses or ():
        if fr.id is not None:
            ids.append(fr.id)
            call = pending.pop(fr.id, None)
        else:  # an id-less answer matches the oldest id-less call of that name
            key = next((k for k, c in pending.items() if isinstance(k, tuple) and c.name == fr.name), None)
            call = None if key is None else pending.pop(key)
        if call is not None:
            generation = call.generation if generation is None else min(generation, call.generation)
    return generation, tuple(ids)


def split_orphans(pending: Pending, cutoff: int) -> tuple[Pending, list[PendingCall]]:
    """The calls that stay pending and those orphaned by resuming from a handle of generation ``cutoff``
    (every call issued at or after it: the resumed session never saw them)."""
    orphaned = [c for c in pending.values() if c.generation >= cutoff]
    if not orphaned:
        return pending, []
    return {k: c for k, c in pending.items() if c.generation < cutoff}, orphaned


def remember_orphans(orphaned: dict[str, None], ids: Sequence[str], limit: int) -> None:
    """Remember ``ids`` as orphaned (a late answer to one is handed back), keeping the latest ``limit``."""
    for call_id in ids:
        orphaned.pop(call_id, None)
        orphaned[call_id] = None
    for stale in list(orphaned)[: max(0, len(orphaned) - limit)]:
        del orphaned[stale]
