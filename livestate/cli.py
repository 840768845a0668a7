"""The ``livestate`` command: ``demo``, ``timeline``, ``replay``, ``diagrams``, ``sessions``, ``--version``.

A subcommand whose optional extra is not installed says so in one line, with the install command, and exits
with status 2; it never shows a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import attrs

__all__ = ["EXTRAS", "main", "missing_extra"]

_DESCRIPTION = """\
Keep Gemini Live API sessions alive: tools around the livestate library.
Run `livestate COMMAND --help` for a command's options.
"""

_DEMO_DESCRIPTION = """\
Start a fake Live API server on 127.0.0.1 and run one session per backend through the websockets driver,
with time compressed (a connection lives about 3 s) and scripted faults. Prints the timeline as it happens
and ends with what the server's ledger holds: sent, consumed, lost, handed back, duplicated. Exits 1 if
anything was lost.

The application sends message 0, 1, 2 ... (50 a second); every 60th (59, 119 ...) is a question that starts
a model turn, and message 120 asks for a tool.
"""

_FAULTS_HELP = """\
comma list of KIND@N, each happening right after message N: goaway (a goAway), silent (a goAway, then
silence), drop (no close frame: 1006), error (a 1011 close), reject (a drop whose resume the server rejects:
a fresh session); 'none' for no scripted faults (default: %(default)s)
"""

#: Top-level modules of the optional dependencies, and the extra that installs each.
EXTRAS: dict[str, str] = {
    "websockets": "websockets",
    "graphviz": "diagrams",
    "google": "genai",
    "opentelemetry": "otel",
    "orjson": "speed",
    "redis": "redis",
}


def missing_extra(command: str, exc: ImportError) -> str:
    """The one line to print when ``command`` failed to import an optional dependency: what is missing and
    the ``pip install`` command that adds it."""
    module = (exc.name or "").split(".")[0]
    extra = EXTRAS.get(module)
    if extra is None:
        return f"livestate {command}: cannot import {exc.name or exc}"
    return f"livestate {command} needs the {extra} extra ({module} is not installed): pip install 'livestate[{extra}]'"


def _demo(args: argparse.Namespace) -> int:
    from livestate.errors import UsageError
    from livestate.testing import demo  # needs websockets: main() turns an ImportError into one line

    if args.messages < 1:
        print("livestate demo: --messages must be at least 1", file=sys.stderr)
        return 2
    try:
        faults = demo.parse_faults(args.faults)
    except UsageError as exc:
        print(f"livestate demo: --faults: {exc}", file=sys.stderr)
        return 2
    options = demo.Options(
        seed=args.seed,
        backend=args.backend,
        messages=args.messages,
        faults=faults,
        timeline=Path(args.timeline) if args.timeline else None,
    )
    return demo.main(sys.stdout, options)


def _diagrams(args: argparse.Namespace) -> int:
    from livestate import diagrams

    directory = Path(args.out or "diagrams")
    readme_name = args.readme if args.readme is not None else ("README.md" if args.out is None else "")
    readme = Path(readme_name) if readme_name else None
    if args.check:
        problems = diagrams.check(directory, readme)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("run `livestate diagrams` to regenerate", file=sys.stderr)
            return 1
        print(f"{directory} and {readme or 'no README'} match the machine's table")
        return 0
    for path in diagrams.write(directory, readme):
        print(f"wrote {path}")
    skipped = diagrams.svg_unavailable()
    if skipped is not None:
        print(f"skipped {directory / 'session.svg'}: {skipped}")
    return 0


def _read(command: str, path: str) -> object:
    from livestate import journal

    try:
        return journal.read_journal(path)
    except (OSError, journal.JournalError) as exc:
        print(f"livestate {command}: {exc}", file=sys.stderr)
        return None


def _replay_journal(args: argparse.Namespace) -> int:
    import json

    import attrs

    from livestate import journal, timeline

    contents = _read("replay", args.journal)
    if not isinstance(contents, journal.JournalContents):
        return 2
    rows, summary = timeline.replay(contents.config, contents.events)
    if args.format == "json":
        out = {
            "timeline": [attrs.asdict(row) for row in rows],
            "summary": attrs.asdict(summary),
            "truncated": contents.truncated,
        }
        print(json.dumps(out, indent=2))
    else:
        print(timeline.format_text(rows, summary))
        if contents.truncated:
            print(
                "note: the journal's last line was cut off (a crash mid-write); everything before it is shown"
            )
    return 0


def _sessions(args: argparse.Namespace) -> int:
    """``livestate sessions list|show|drop STORE_URL [ID]``: handles only as fingerprints."""
    import asyncio

    from livestate.store import StoreError, open_store

    async def run() -> int:
        store = open_store(args.store)
        try:
            if args.action == "list":
                for info in await store.list_sessions():
                    lease = f"leased by {info.owner} ({info.lease_left:.1f} s)" if info.owner else "free"
                    print(
                        f"{info.session_id}\t{info.state or '-'}\t{info.handle_fingerprint or 'no handle'}"
                        f"\t{info.messages} unconfirmed\t{lease}"
                    )
                return 0
            if not args.id:
                print(f"livestate sessions {args.action}: a session id is needed", file=sys.stderr)
                return 2
            if args.action == "drop":
                if await store.delete(args.id):
                    print(f"dropped {args.id}")
                    return 0
                print(f"no session {args.id!r}", file=sys.stderr)
                return 1
            found = [i for i in await store.list_sessions() if i.session_id == args.id]
            if not found:
                print(f"no session {args.id!r}", file=sys.stderr)
                return 1
            try:
                stored = await store.load(args.id)
                health = "ok" if stored is not None else "no snapshot yet"
            except StoreError as exc:
                health = f"CORRUPT: {exc}"
            for name, value in attrs.asdict(found[0]).items():
                print(f"{name}: {value}")
            print(f"records: {health}")
            return 0 if not health.startswith("CORRUPT") else 1
        finally:
            await store.close()

    return asyncio.run(run())


def _timeline(args: argparse.Namespace) -> int:
    from livestate import journal, picture

    contents = _read("timeline", args.journal)
    if not isinstance(contents, journal.JournalContents):
        return 2
    out = Path(args.output) if args.output else Path(args.journal).with_suffix(".svg")
    svg = picture.render_svg(contents.config, contents.events, title=args.title or Path(args.journal).name)
    out.write_text(svg, encoding="utf-8")
    print(f"wrote {out}" + (" (the journal's cut-off last line skipped)" if contents.truncated else ""))
    return 0


def _version() -> str:
    from livestate import __version__

    return f"livestate {__version__}"


def _parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="livestate", description=_DESCRIPTION, formatter_class=raw)
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="run sessions against the embedded fake server, with scripted faults",
        description=_DEMO_DESCRIPTION,
        formatter_class=raw,
    )
    demo.add_argument(
        "--seed", type=int, default=0, help="seeds jitter and the server's choices (default: 0)"
    )
    demo.add_argument(
        "--backend",
        choices=["vertex", "gemini", "both"],
        default="both",
        help="Vertex AI (transparent, exactly once), the Gemini API (handle-only) or both (default)",
    )
    demo.add_argument("--messages", type=int, default=300, help="messages to send (default: %(default)s)")
    demo.add_argument("--faults", default="goaway@59,drop@120,reject@200", help=_FAULTS_HELP)
    demo.add_argument(
        "--timeline",
        metavar="DIR",
        help="write a journal and a timeline SVG per backend into DIR (vertex.jsonl, vertex.svg ...)",
    )
    demo.set_defaults(run=_demo)

    timeline = commands.add_parser(
        "timeline",
        help="draw a journal as an SVG timeline",
        description="Draw a journal (livestate.journal.Journal) as an SVG timeline: one bar per connection, "
        "gaps, goAways, tool calls, resumes with the number replayed, messages handed back, turns cut.",
    )
    timeline.add_argument("journal", help="a JSON Lines journal written by livestate.journal.Journal")
    timeline.add_argument("-o", "--output", metavar="SVG", help="where to write (default: JOURNAL with .svg)")
    timeline.add_argument("--title", help="the picture's title (default: the journal's file name)")
    timeline.set_defaults(run=_timeline)

    replay = commands.add_parser("replay", help="replay a journal: a text timeline and a summary")
    replay.add_argument("journal", help="a JSON Lines journal written by livestate.journal.Journal")
    replay.add_argument("--format", choices=["text", "json"], default="text")
    replay.set_defaults(run=_replay_journal)

    diagrams = commands.add_parser(
        "diagrams",
        help="regenerate the lifecycle diagrams (and README sections) from the table",
        description="Write session.mmd, session.dot, reconnect.mmd and, when Graphviz's `dot` is installed, "
        "session.svg into --out; refresh the generated sections of --readme.",
    )
    diagrams.add_argument(
        "--check", action="store_true", help="exit 1 and say what differs instead of writing"
    )
    diagrams.add_argument(
        "--out", "--dir", dest="out", metavar="DIR", help="where the diagrams go (default: diagrams)"
    )
    diagrams.add_argument(
        "--readme",
        help="README whose generated sections to refresh ('' for none; default: README.md without --out, "
        "none with it)",
    )
    diagrams.set_defaults(run=_diagrams)
    sessions = commands.add_parser(
        "sessions",
        help="list, show or drop sessions in a store",
        description="List, show or drop the sessions a store holds (handles only as fingerprints).",
    )
    sessions.add_argument("action", choices=["list", "show", "drop"])
    sessions.add_argument("store", help="sqlite:///path/file.db, a path, or redis://host:port/db")
    sessions.add_argument("id", nargs="?", help="the session id (show, drop)")
    sessions.set_defaults(run=_sessions)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``livestate`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ImportError as exc:  # an optional extra is missing: one line, never a traceback
        print(missing_extra(args.command, exc), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
