"""The ``livestate`` command: ``demo``, ``diagrams``, ``replay``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _demo(args: argparse.Namespace) -> int:
    print(
        "livestate demo: the embedded fake server and the websockets driver are not built yet.\n"
        "What exists today is the wire model and codec (livestate.wire): run the tests with the\n"
        "README's second command to see them exercised against every fixture."
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``livestate`` console script; returns the exit status."""
    parser = argparse.ArgumentParser(prog="livestate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a session against the embedded fake server")
    demo.set_defaults(run=_demo)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
