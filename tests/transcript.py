"""Drive a Session through a scripted transcript of ../shared/fixtures/sessions and record what it does.

Server lines become ``MessageReceived``, server and network closes ``ConnectionClosed``, and the client's own
new messages (not setups, not replays) ``SendRequested``. Timers the session armed fire when the script's
clock passes their deadline. What the session puts on the wire, per connection, is rebuilt from its commands
with a real ``ReplayBuffer``, so it can be compared with the script's client lines.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from livestate import Session, events, wire
from livestate.testing.reference import ReferenceDriver

from conftest import load_jsonl


def script(name: str) -> list[dict[str, Any]]:
    return load_jsonl(f"sessions/{name}.jsonl")


def expected_wire(name: str) -> dict[int, list[wire.ClientMessage]]:
    """The client lines of a script, per connection, decoded."""
    out: dict[int, list[wire.ClientMessage]] = defaultdict(list)
    for line in script(name):
        if line["dir"] == "client":
            out[line["conn"]].append(wire.decode_client(json.dumps(line["frame"])))
    return out


def run(name: str, session: Session, *, until: float | None = None) -> ReferenceDriver:
    """Play the script against ``session`` (already restored or fresh) on livestate's reference transport;
    ``Connect`` at the first line."""
    result = ReferenceDriver(session)
    lines = script(name)
    if session.state.name == "IDLE":
        result.feed(events.Connect(at=lines[0]["at"]))
    for line in lines:
        at = line["at"]
        if until is not None and at > until:
            break
        result.fire_due_timers(at)
        if line["dir"] == "server":
            message = wire.decode(json.dumps(line["frame"]))
            result.feed(events.MessageReceived(at=at, message=message, connection=line["conn"]))
        elif line["dir"] == "close" and line["by"] != "client":
            result.feed(
                events.ConnectionClosed(
                    at=at, code=line["code"], reason=line["reason"], connection=line["conn"]
                )
            )
        elif line["dir"] == "client" and "replay_of" not in line and "setup" not in line["frame"]:
            message = wire.decode_client(json.dumps(line["frame"]))
            result.feed(events.SendRequested(at=at, message=message))
    return result
