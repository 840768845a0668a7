"""`livestate demo`, the README's main job, runs and proves its claim."""

from __future__ import annotations

import io

from livestate.testing import demo


def test_the_demo_loses_nothing_and_says_so() -> None:
    out = io.StringIO()
    assert demo.main(out) == 0
    text = out.getvalue()
    assert "nothing lost." in text
    rows = [line for line in text.splitlines() if "exactly once" in line and line.strip()[0].isalpha()]
    vertex = rows[-1].split()
    # backend name (5 words), sent, consumed, lost, handed back*, duplicated, ...
    sent, consumed, lost, handed_back, duplicated = (int(x) for x in vertex[5:10])
    assert lost == 0 and duplicated == 0
    assert consumed + handed_back >= sent  # a message can be both: consumed, then handed back unconfirmed
    for event in (
        "goAway",
        "toolCall",
        "Resumed(state_restored=False",
        "ToolCallsOrphaned",
        "TurnAborted",
        "resume REJECTED: connection",
        "connection lost: connection",
    ):
        assert event in text
