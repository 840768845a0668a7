"""Snapshots: a session and its buffered payloads as JSON, across processes; the old names in the journal."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import attrs
import pytest

from livestate import Session, events, journal, snapshots, wire
from livestate.journal import JournalError
from livestate.snapshots import SnapshotError
from livestate.testing.reference import ReferenceDriver

import transcript
from helpers import config, driver

PACKAGE = Path(snapshots.__file__).resolve().parent
MOVED = ("save_state", "load_state", "snapshot_to_json", "snapshot_from_json")


def test_snapshot_json_round_trip() -> None:
    d = driver(vertex=True).live()
    d.send(wire.RealtimeInput(text="a"))
    d.server(
        wire.SessionResumptionUpdate(
            new_handle="h1", resumable=True, last_consumed_client_message_index=wire.MessageIndex(0)
        )
    )
    snapshot = d.session.snapshot()
    assert snapshots.snapshot_from_json(snapshots.snapshot_to_json(snapshot)) == snapshot
    with pytest.raises(JournalError, match="snapshot"):
        snapshots.snapshot_from_json('{"state": "nowhere"}')


def test_a_snapshot_restored_in_a_fresh_interpreter_resumes_the_session(tmp_path: Path) -> None:
    """Process A runs the first connection of the Vertex drop script and persists its state (snapshot plus
    buffered payloads) on every handle update, then crashes. Process B loads the state, learns that the old
    connection is gone, re-sends what A sent after the last save, and resumes with the handle: the new
    connection gets exactly the script's resume setup and replay."""
    name = "vertex_transparent_drop_replay"
    first = transcript.expected_wire(name)[1][0]
    assert isinstance(first, wire.Setup)
    cfg = attrs.evolve(config(vertex=True), setup=attrs.evolve(first, session_resumption=None))
    state_path = tmp_path / "state.json"
    run = ReferenceDriver(Session(cfg))

    def persist(event: events.Event) -> None:
        if isinstance(event, events.MessageReceived) and isinstance(
            event.message, wire.SessionResumptionUpdate
        ):
            state_path.write_text(snapshots.save_state(run.session.snapshot(), run.buffer))

    run.session.recorder = persist
    run.feed(events.Connect(at=0.0))
    for line in transcript.script(name):
        if line["at"] > 0.85:
            break  # process A crashes here
        if line["dir"] == "server":
            run.feed(
                events.MessageReceived(
                    at=line["at"], message=wire.decode(json.dumps(line["frame"])), connection=1
                )
            )
        elif "setup" not in line["frame"]:
            run.feed(
                events.SendRequested(at=line["at"], message=wire.decode_client(json.dumps(line["frame"])))
            )
    script = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import transcript
        from livestate import Session, snapshots, commands, events, wire
        from livestate.testing.reference import ReferenceDriver
        snapshot, buffer = snapshots.load_state(open({str(state_path)!r}).read())
        run = ReferenceDriver(Session.restore(snapshot), buffer=buffer)
        run.feed(events.ConnectionClosed(at=0.9, code=1006, connection=1))
        for line in transcript.script({name!r}):
            if 0.7 < line["at"] < 0.9 and line["dir"] == "client":  # sent by A after its last save
                run.feed(events.SendRequested(at=line["at"], message=wire.decode_client(json.dumps(line["frame"]))))
        run.fire_due_timers(1.4)
        run.feed(events.MessageReceived(at=1.85, message=wire.SetupComplete(), connection=2))
        print(json.dumps({{
            "handles": [c.handle for _, c in run.timeline if isinstance(c, commands.ReconnectWithHandle)],
            "resumed": [[c.state_restored, c.replayed] for _, c in run.timeline if isinstance(c, commands.Resumed)],
            "sent": [wire.encode(m) for m in run.sent[2]],
        }}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    result = json.loads(out)
    assert result["handles"] == ["vtx-H1-8f2c"]
    assert result["resumed"] == [[True, 4]]
    expected = transcript.expected_wire(name)[2][:5]  # setup with H1, then a4..a7 replayed
    assert [wire.decode_client(m) for m in result["sent"]] == expected


def saved_state() -> str:
    d = driver(vertex=True).live()
    d.send(wire.RealtimeInput(text="a"))
    d.send(wire.RealtimeInput(text="b"))
    d.server(wire.SessionResumptionUpdate(new_handle="h1", resumable=True))
    return snapshots.save_state(d.session.snapshot(), d.buffer)


def test_saved_state_round_trips_with_its_buffer() -> None:
    d = driver(vertex=True).live()
    d.send(wire.RealtimeInput(text="a"))
    d.send(wire.RealtimeInput(text="b"))
    snapshot, buffer = snapshots.load_state(snapshots.save_state(d.session.snapshot(), d.buffer))
    assert snapshot == d.session.snapshot()
    assert (
        buffer.items()
        == d.buffer.items()
        == [(1, wire.RealtimeInput(text="a")), (2, wire.RealtimeInput(text="b"))]
    )


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda state: state["snapshot"].update(seq="2"), "state: "),  # a string where an int belongs
        (lambda state: state["snapshot"].update(resumable_now=1), "state: "),  # a number for a bool
        (lambda state: state["snapshot"].update(last_at=True), "state: "),  # a bool for a number
        (lambda state: state["buffer"][0].__setitem__(0, "1"), "state: expected an integer, got '1'"),
        (lambda state: state["buffer"][0].__setitem__(1, []), "state: expected a message object, got list"),
        (lambda state: state.pop("buffer"), "state: 'buffer'"),
    ],
)
def test_saved_state_is_read_strictly(mutate: object, message: str) -> None:
    state = json.loads(saved_state())
    mutate(state)  # type: ignore[operator]
    with pytest.raises(SnapshotError, match=message) as info:
        snapshots.load_state(json.dumps(state))
    assert isinstance(info.value, JournalError)  # what code written for the journal's snapshots catches
    assert "h1" not in str(info.value)


def test_a_time_that_is_not_finite_is_refused_rather_than_written_unreadable() -> None:
    snapshot = attrs.evolve(driver().live().session.snapshot(), last_at=float("inf"))
    with pytest.raises(SnapshotError, match="snapshot: cannot encode"):
        snapshots.snapshot_to_json(snapshot)
    with pytest.raises(SnapshotError, match="state: cannot encode"):
        snapshots.save_state(snapshot, ReferenceDriver(Session(config())).buffer)


@pytest.mark.parametrize("name", MOVED)
def test_the_old_names_in_the_journal_still_work_and_warn(name: str) -> None:
    with pytest.warns(
        DeprecationWarning,
        match=rf"livestate\.journal\.{name} is deprecated: use livestate\.snapshots\.{name}",
    ):
        old = getattr(journal, name)
    assert old is getattr(snapshots, name)
    with pytest.warns(DeprecationWarning, match=name):
        exec(f"from livestate.journal import {name}", {})
    assert name not in journal.__all__
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        journal.nothing_here  # noqa: B018


def test_nothing_in_livestate_imports_the_old_names() -> None:
    """Importing every module warns only from store/, which switches to livestate.snapshots when the store
    work is merged (then this list is empty)."""
    script = textwrap.dedent("""
        import importlib, json, pkgutil, warnings
        import livestate
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for info in pkgutil.walk_packages(livestate.__path__, "livestate."):
                importlib.import_module(info.name)
        print(json.dumps(sorted({w.filename for w in caught if str(w.message).startswith("livestate.journal.")})))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    warned = [Path(f).resolve() for f in json.loads(out.splitlines()[-1])]
    assert all(path.relative_to(PACKAGE).parts[0] == "store" for path in warned), warned
    # And no code path reaches them at run time either.
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] == "store" or path.name == "journal.py":
            continue
        text = path.read_text()
        for name in MOVED:
            assert f"journal.{name}" not in text and f"journal import {name}" not in text, (path, name)
