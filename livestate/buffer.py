"""``ReplayBuffer``: the transport-side store that carries out the session's buffer commands.

It keeps payloads by ``seq`` in arrival order (seqs only grow): append is O(1), a trim is O(messages
trimmed), and memory is the unconsumed window.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

from livestate import wire
from livestate.commands import BufferMessage, Command, DropBuffered, ReplayBuffered, TrimSeqs, TrimThrough

__all__ = ["ReplayBuffer"]


class ReplayBuffer:
    """Buffered client messages by ``seq``. Feed it every command with :meth:`apply`."""

    __slots__ = ("_messages",)

    def __init__(self) -> None:
        self._messages: OrderedDict[int, wire.ClientMessage] = OrderedDict()

    def __len__(self) -> int:
        return len(self._messages)

    def items(self) -> list[tuple[int, wire.ClientMessage]]:
        """Every buffered ``(seq, message)``, oldest first (to persist beside a session snapshot)."""
        return list(self._messages.items())

    @classmethod
    def from_items(cls, items: list[tuple[int, wire.ClientMessage]]) -> ReplayBuffer:
        """A buffer holding ``items`` (as :meth:`items` returned them)."""
        buffer = cls()
        buffer._messages.update(items)
        return buffer

    def seqs(self) -> list[int]:
        """The buffered seqs, oldest first."""
        return list(self._messages)

    def apply(self, command: Command) -> list[tuple[int, wire.ClientMessage]]:
        """Carry out one command and return ``(seq, message)`` pairs, oldest first: for ``ReplayBuffered``
        the messages to send, in order; for ``DropBuffered`` the messages it forgot, to hand back to the
        application (the notice that follows names the same seqs). Every other command returns an empty list
        (commands that are not about the buffer are ignored)."""
        kind = type(command)
        if kind is BufferMessage:
            self._messages[command.seq] = command.message  # type: ignore[union-attr]
        elif kind is TrimThrough:
            self.trim(command.seq)  # type: ignore[union-attr]
        elif kind is ReplayBuffered:
            return list(self.replay(command.first_seq, command.last_seq))  # type: ignore[union-attr]
        elif kind is DropBuffered or kind is TrimSeqs:
            messages = self._messages
            forgotten = [(seq, messages.pop(seq)) for seq in command.seqs if seq in messages]  # type: ignore[union-attr]
            return forgotten if kind is DropBuffered else []
        return []

    def trim(self, seq: int) -> int:
        """Forget every message with a seq up to ``seq``; return how many were forgotten."""
        messages = self._messages
        count = 0
        while messages:
            first = next(iter(messages))
            if first > seq:
                break
            messages.popitem(last=False)
            count += 1
        return count

    def replay(self, first_seq: int, last_seq: int) -> Iterator[tuple[int, wire.ClientMessage]]:
        """The buffered messages with ``first_seq <= seq <= last_seq``, oldest first."""
        for seq, message in self._messages.items():
            if seq > last_seq:
                break
            if seq >= first_seq:
                yield seq, message
