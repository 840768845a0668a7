"""The shape of the core: small rooms, one record, a public surface that is what the design lists, and no
handler that decides about states by itself."""

from __future__ import annotations

import ast
from pathlib import Path

import attrs

from livestate import Session, SessionConfig, events, wire
from livestate.machine import TABLE, TRAITS, SessionState
from livestate.record import SessionRecord, SessionSnapshot

PACKAGE = Path(__file__).resolve().parent.parent / "livestate"

#: Session's public names: DESIGN.md's (handle, state, receive, send, next_deadline, replay, snapshot/restore)
#: and the read-only counters and helpers the README documents.
PUBLIC = {
    "config",
    "connection",
    "deadlines",
    "handle",
    "handle_generation",
    "has_handle",
    "has_room_for",
    "next_deadline",
    "outage_attempts",
    "receive",
    "recorder",
    "replay",
    "restore",
    "resume",
    "send",
    "session_attempts",
    "snapshot",
    "state",
    "unconfirmed_count",
    "unconfirmed_seqs",
}


def classes(path: Path) -> dict[str, int]:
    """Lines per class in ``path``."""
    tree = ast.parse(path.read_text())
    return {
        f"{path.name}:{node.name}": (node.end_lineno or node.lineno) - node.lineno + 1
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
    }


def test_session_py_is_small_and_no_class_is_large() -> None:
    assert len((PACKAGE / "session.py").read_text().splitlines()) < 400
    sizes: dict[str, int] = {}
    for path in PACKAGE.rglob("*.py"):
        sizes |= classes(path)
    assert len(sizes) > 50  # the walk found the package
    assert {name: lines for name, lines in sizes.items() if lines > 300} == {}


def test_sessions_public_names_are_the_documented_ones() -> None:
    session = Session(SessionConfig(setup=wire.Setup(model="m")))
    shown = {name for name in dir(session) if not name.startswith("_")}
    assert shown == PUBLIC


def test_the_snapshot_mirrors_the_record_field_by_field() -> None:
    record = [f.name for f in attrs.fields(SessionRecord)]
    assert [f.name for f in attrs.fields(SessionSnapshot)] == ["config", *record]
    assert "handle" in record and "state" in record


def test_a_snapshot_round_trips_through_the_record_with_every_container() -> None:
    config = SessionConfig(setup=wire.Setup(model="m"))
    session = Session(config)
    session.handle(events.Connect(at=0.0))
    session.handle(events.MessageReceived(at=0.1, message=wire.SetupComplete()))
    call = wire.ToolCall(function_calls=(wire.FunctionCall(id="c1", name="f"),))
    session.handle(events.MessageReceived(at=0.2, message=call))
    session.send(wire.RealtimeInput(text="hi"), at=0.3)
    snapshot = session.snapshot()
    assert snapshot.unconsumed and snapshot.pending_calls and snapshot.timers
    assert SessionRecord.thaw(snapshot).freeze(config) == snapshot
    copy = SessionRecord.thaw(snapshot).copy()
    copy.unconsumed.clear()
    copy.timers.clear()
    assert SessionRecord.thaw(snapshot).freeze(config) == snapshot  # the copy's containers are its own


def test_no_handler_tests_a_state_itself() -> None:
    """session.py routes events; whether a state allows, ignores or absorbs one is its traits' answer
    (derived from the table), and what it changes to is the table's."""
    source = (PACKAGE / "session.py").read_text()
    tree = ast.parse(source)
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert not names & {"S", "LIVE", "TERMINAL"}
    state_compares = [
        ast.unparse(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.Compare)
        and any(isinstance(n, ast.Attribute) and n.attr == "state" for n in ast.walk(node))
    ]
    assert state_compares == []
    assert "kwargs" not in (PACKAGE / "lifecycle.py").read_text()


def test_traits_follow_the_table() -> None:
    drains = {state for row in TABLE if row.trigger == "drain" for state in row.sources}
    assert {s for s, t in TRAITS.items() if t.drains} == drains == {SessionState.GOING_AWAY}
    assert {s for s, t in TRAITS.items() if not t.started} == {SessionState.IDLE}
    ended = {s for s, t in TRAITS.items() if t.ended}
    assert ended == {SessionState.CLOSED, SessionState.FAILED}
    assert not any(state in row.sources for row in TABLE for state in ended)  # terminal: no exits
    live = {s for s, t in TRAITS.items() if t.live}
    entered_live = ("setup_complete", "handle_update", "not_resumable", "go_away")
    assert live == {row.dest for row in TABLE if row.trigger in entered_live and row.dest is not None}


def module_imports() -> dict[str, set[str]]:
    """Each livestate module's module-level imports of other livestate modules (``TYPE_CHECKING`` blocks and
    the top-level package's re-exports left out)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("livestate."):
                found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        graph[name] = (found & set(modules)) - {name, "livestate"}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        for nxt in sorted(graph[node]):
            if (found := visit(nxt)) is not None:
                return found
        path.pop()
        done.add(node)
        return None

    return next((found for node in sorted(graph) if (found := visit(node)) is not None), None)


def test_no_import_cycle() -> None:
    graph = module_imports()
    assert {"livestate.session", "livestate.lifecycle", "livestate.drivers.executor"} <= set(graph)
    assert "livestate.machine" in graph["livestate.record"]
    assert cycle(graph) is None
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # the check would notice
