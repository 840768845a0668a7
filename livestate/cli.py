"""The ``livestate`` command: ``demo``, ``diagrams``, ``replay``, ``sessions``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import attrs


def _demo(args: argparse.Namespace) -> int:
    try:
        from livestate.testing import demo
    except ImportError as exc:  # the websockets extra is missing
        print(f"livestate demo needs the websockets extra: pip install 'livestate[websockets]' ({exc})")
        return 2
    return demo.main()


def _diagrams(args: argparse.Namespace) -> int:
    from livestate import diagrams

    directory, readme = Path(args.dir), Path(args.readme) if args.readme else None
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
    return 0


def _replay(args: argparse.Namespace) -> int:
    import json

    import attrs

    from livestate import journal, timeline

    try:
        contents = journal.read_journal(args.journal)
    except (OSError, journal.JournalError) as exc:
        print(f"livestate replay: {exc}", file=sys.stderr)
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``livestate`` console script; returns the exit status."""
    parser = argparse.ArgumentParser(prog="livestate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a session against the embedded fake server")
    demo.set_defaults(run=_demo)
    diagrams = commands.add_parser(
        "diagrams", help="regenerate diagrams/ (and README sections) from the table"
    )
    diagrams.add_argument(
        "--check", action="store_true", help="exit 1 and say what differs instead of writing"
    )
    diagrams.add_argument("--dir", default="diagrams", help="where the diagrams live (default: diagrams)")
    diagrams.add_argument(
        "--readme", default="README.md", help="README with generated sections ('' for none)"
    )
    diagrams.set_defaults(run=_diagrams)
    sessions = commands.add_parser("sessions", help="list, show or drop sessions in a store")
    sessions.add_argument("action", choices=["list", "show", "drop"])
    sessions.add_argument("store", help="sqlite:///path/file.db, a path, or redis://host:port/db")
    sessions.add_argument("id", nargs="?", help="the session id (show, drop)")
    sessions.set_defaults(run=_sessions)
    replay = commands.add_parser("replay", help="replay a journal: timeline and summary")
    replay.add_argument("journal", help="a JSON Lines journal written by livestate.journal.Journal")
    replay.add_argument("--format", choices=["text", "json"], default="text")
    replay.set_defaults(run=_replay)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
