"""Notices live in livestate.notices and are the same classes in livestate.commands; old names still work."""

from __future__ import annotations

import typing

from livestate import ReplayBuffer, commands, notices, wire


def test_every_notice_is_the_same_class_under_commands() -> None:
    for name in notices.__all__:
        assert getattr(commands, name) is getattr(notices, name), name
        assert name in commands.__all__
    assert set(typing.get_args(notices.Notice)) == {
        getattr(notices, n) for n in notices.__all__ if n != "Notice"
    }
    assert set(typing.get_args(notices.Notice)) <= set(typing.get_args(commands.Command))


def test_trim_to_index_is_the_old_name_of_trim_through() -> None:
    assert commands.TrimToIndex is commands.TrimThrough
    old = commands.TrimToIndex(seq=2)
    assert old == commands.TrimThrough(seq=2) and isinstance(old, commands.TrimThrough)
    match commands.TrimThrough(seq=2):
        case commands.TrimToIndex(seq=seq):
            assert seq == 2
        case _:  # pragma: no cover
            raise AssertionError("the old name no longer matches")
    buffer = ReplayBuffer.from_items([(1, wire.RealtimeInput(text="a")), (2, wire.RealtimeInput(text="b"))])
    buffer.apply(old)
    assert buffer.seqs() == []
