"""Render :mod:`livestate.machine`'s one table as diagrams (mermaid, DOT, SVG) and as the README's state table.

Everything is built straight from ``machine.TABLE`` (the table the runtime machine is built from), mermaid as
text and DOT with the ``graphviz`` package, so the pictures cannot disagree with the runtime, and no library
internals are overridden or patched. Output is deterministic: regenerating gives no diff, and
``check()`` says what differs when the committed files no longer match the table.
"""

from __future__ import annotations

import re
import shutil
from collections import defaultdict
from pathlib import Path

from livestate.machine import LIVE, STATE_DOCS, TABLE, TERMINAL, Row, SessionState

__all__ = ["check", "mermaid", "readme_sections", "render_dot", "svg_unavailable", "write"]

#: What to run when the SVG cannot be made for want of Graphviz's ``dot``.
DOT_INSTALL_HINT = (
    "install Graphviz (apt-get install graphviz, brew install graphviz, or https://graphviz.org/download/)"
)

TITLE = "livestate session lifecycle"

#: Edge styles by trigger: the happy path bold, failures red, the application's close quiet.
_HAPPY = {"connect", "setup_complete", "handle_update", "go_away", "drain"}
_EDGE_STYLE: dict[str, dict[str, str]] = {
    "happy": {"color": "#1a7f37", "penwidth": "2.2", "fontcolor": "#1a7f37", "weight": "4"},
    "failure": {"color": "#cf222e", "fontcolor": "#cf222e", "style": "dashed", "constraint": "false"},
    "close": {
        "color": "#8c959f",
        "fontcolor": "#8c959f",
        "style": "dashed",
        "fontsize": "9",
        "constraint": "false",
    },
    "other": {"color": "#24292f"},
}
_NODE_STYLE: dict[str, dict[str, str]] = {
    "live": {"style": "rounded,filled", "fillcolor": "#dafbe1"},
    "between": {"style": "rounded,filled", "fillcolor": "#fff8c5"},
    "terminal": {"style": "rounded,filled,bold", "fillcolor": "#d0d7de", "peripheries": "2"},
    "start": {"style": "rounded,filled", "fillcolor": "#ffffff"},
}


def _node_kind(name: str) -> str:
    state = SessionState[name]
    if state in TERMINAL:
        return "terminal"
    if state in LIVE:
        return "live"
    return "start" if state is SessionState.IDLE else "between"


def _edge_kind(trigger: str, dest: str) -> str:
    if trigger == "close":
        return "close"
    if dest == SessionState.FAILED.name:
        return "failure"
    return "happy" if trigger in _HAPPY else "other"


def _label(row: Row) -> str:
    return row.trigger + (f" [{' & '.join(row.conditions)}]" if row.conditions else "")


def _edges() -> dict[tuple[str, str, str], list[str]]:
    """The table's rows as edges: ``(source, dest, kind)`` with the labels of every row it carries, in table
    order. A row that stays (``dest`` None) is a loop on its source."""
    edges: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for row in TABLE:
        for source in row.sources:
            dest = (row.dest or source).name
            edges[(source.name, dest, _edge_kind(row.trigger, dest))].append(_label(row))
    return edges


def mermaid() -> str:
    """The lifecycle as a mermaid ``stateDiagram-v2``: states coloured by kind, terminal states apart."""
    lines = ["---", f"title: {TITLE}", "---", "stateDiagram-v2", "  direction TB"]
    for kind, style in _MERMAID_CLASSES.items():
        lines.append(f"  classDef {kind} {style}")
    lines.append(f"  [*] --> {SessionState.IDLE.name}")
    for (source, dest, _), labels in _edges().items():
        lines.append(f"  {source} --> {dest}: {' | '.join(labels)}")
    for kind in _MERMAID_CLASSES:
        members = [state.name for state in SessionState if _node_kind(state.name) == kind]
        lines.append(f"  class {','.join(members)} {kind}")
    return "\n".join(lines) + "\n"


#: Mermaid class styles by node kind (the same colours as the SVG).
_MERMAID_CLASSES = {
    "start": "fill:white,color:black",
    "between": "fill:#fff8c5,color:black",
    "live": "fill:#dafbe1,color:black",
    "terminal": "fill:#d0d7de,color:black,stroke-width:3px",
}


def render_dot() -> str:
    """The lifecycle as Graphviz DOT, built with the ``graphviz`` package straight from the table."""
    import graphviz  # type: ignore[import-untyped]

    graph = graphviz.Digraph(
        name=TITLE,
        graph_attr={
            "label": TITLE,
            "rankdir": "TB",
            "nodesep": "0.5",
            "ranksep": "0.7",
            "fontname": "Helvetica",
        },
        node_attr={"shape": "box", "fontname": "Helvetica"},
        edge_attr={"fontname": "Helvetica", "fontsize": "10"},
    )
    for state in SessionState:
        graph.node(state.name, label=state.name, **_NODE_STYLE[_node_kind(state.name)])
    with graph.subgraph(name="live") as live:
        live.attr(rank="same")
        for name in (SessionState.RESUMABLE.name, SessionState.GENERATING.name):
            live.node(name)
    with graph.subgraph(name="terminal") as terminal:
        terminal.attr(rank="sink")
        for name in sorted(s.name for s in TERMINAL):
            terminal.node(name)
    for (source, dest, kind), labels in _edges().items():
        graph.edge(source, dest, label=" | ".join(labels), **_EDGE_STYLE[kind])
    return str(graph.source)


def svg_unavailable() -> str | None:
    """Why :func:`write` cannot make ``session.svg`` here (with the install hint), or ``None`` if it can."""
    if shutil.which("dot") is None:
        return f"Graphviz's `dot` program is not on PATH; {DOT_INSTALL_HINT}"
    return None


def _svg(dot_source: str) -> bytes | None:
    if svg_unavailable() is not None:
        return None
    import graphviz

    return bytes(graphviz.Source(dot_source).pipe(format="svg"))


RECONNECT_SEQUENCE = """sequenceDiagram
    participant App
    participant Session as livestate Session
    participant Driver as transport (driver)
    participant Old as connection 1
    participant New as connection 2
    Old->>Driver: goAway(timeLeft 50s)
    Driver->>Session: MessageReceived(goAway)
    Session->>Driver: StartTimer(GO_AWAY, at+50-margin)
    Session-->>App: StateChanged(GOING_AWAY), a notice the driver hands on
    Note over Session,Old: drain: keep reading, keep sending (buffered)
    Old->>Driver: serverContent(turnComplete), sessionResumptionUpdate(resumable, newHandle H)
    Driver->>Session: MessageReceived(...)
    Session->>Driver: CloseConnection(1000), then ReconnectWithHandle(H)
    Driver->>Old: close - break before make
    Driver->>New: setup{sessionResumption{handle H}}
    New->>Driver: setupComplete
    Driver->>Session: MessageReceived(setupComplete)
    Session->>Driver: ReplayBuffered(first_seq..last_seq), before anything new
    Driver->>New: the buffered messages, in order
    Session-->>App: Resumed(state_restored=true, replayed=n)
    App->>Driver: send(message)
    Driver->>Session: SendRequested(message)
    Session->>Driver: BufferMessage, SendMessage
    Driver->>New: the message
    New->>Driver: sessionResumptionUpdate(index k)
    Driver->>Session: MessageReceived(...)
    Session->>Driver: TrimThrough(seq of index k): drop what the server consumed
"""


def readme_sections() -> dict[str, str]:
    """The generated README sections, by marker name: the mermaid diagram and the state table."""
    rows = ["| state | meaning | leaves on |", "|---|---|---|"]
    for state in SessionState:
        exits = sorted({row.trigger for row in TABLE if state in row.sources})
        rows.append(f"| `{state.name}` | {STATE_DOCS[state]} | {', '.join(f'`{t}`' for t in exits) or '—'} |")
    transitions = ["| trigger | from | to | when | means |", "|---|---|---|---|---|"]
    previous = None
    for row in TABLE:
        sources = ", ".join(s.name for s in row.sources)
        dest = row.dest.name if row.dest else "(stays)"
        guarded_before = previous is not None and previous.conditions and previous.trigger == row.trigger
        when = " and ".join(f"`{c}`" for c in row.conditions) or ("otherwise" if guarded_before else "always")
        previous = row
        transitions.append(f"| `{row.trigger}` | {sources} | {dest} | {when} | {row.doc} |")
    return {
        "diagram": "```mermaid\n" + mermaid() + "```",
        "states": "\n".join(rows) + "\n\n" + "\n".join(transitions),
        "reconnect": "```mermaid\n" + RECONNECT_SEQUENCE + "```",
    }


def _files() -> dict[str, str]:
    return {"session.mmd": mermaid(), "session.dot": render_dot(), "reconnect.mmd": RECONNECT_SEQUENCE}


def _replace_sections(text: str, sections: dict[str, str]) -> str:
    for name, body in sections.items():
        begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
        pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
        text = pattern.sub(lambda _: f"{begin}\n{body}\n{end}", text)  # noqa: B023 - used at once
    return text


def write(directory: Path, readme: Path | None = None) -> list[Path]:
    """Regenerate ``directory``'s diagrams (and the README's generated sections); return the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in _files().items():
        (directory / name).write_text(text, encoding="utf-8")
        written.append(directory / name)
    svg = _svg(render_dot())
    if svg is not None:
        (directory / "session.svg").write_bytes(svg)
        written.append(directory / "session.svg")
    if readme is not None and readme.exists():
        readme.write_text(
            _replace_sections(readme.read_text(encoding="utf-8"), readme_sections()), encoding="utf-8"
        )
        written.append(readme)
    return written


def check(directory: Path, readme: Path | None = None) -> list[str]:
    """What differs between the committed diagrams (and README sections) and the table; empty when in sync.

    The SVG's bytes depend on the installed ``dot``, so only its presence is checked."""
    problems = []
    for name, text in _files().items():
        path = directory / name
        if not path.exists():
            problems.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: differs from the table")
    if not (directory / "session.svg").exists():
        problems.append(f"{directory / 'session.svg'}: missing")
    if readme is not None:
        current = readme.read_text(encoding="utf-8") if readme.exists() else ""
        for name in readme_sections():
            if f"<!-- {name}:begin -->" not in current:
                problems.append(f"{readme}: no <!-- {name}:begin --> section")
        if _replace_sections(current, readme_sections()) != current:
            problems.append(f"{readme}: generated sections differ from the table")
    return problems
