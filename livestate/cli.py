"""The ``livestate`` command: ``demo``, ``diagrams``, ``replay``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


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
    replay = commands.add_parser("replay", help="replay a journal: timeline and summary")
    replay.add_argument("journal", help="a JSON Lines journal written by livestate.journal.Journal")
    replay.add_argument("--format", choices=["text", "json"], default="text")
    replay.set_defaults(run=_replay)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
