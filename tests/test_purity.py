"""The core is pure: outside drivers/, integrations/, store/, testing/, cli.py and diagrams.py nothing imports I/O, clocks or randomness."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "livestate"
BANNED = {
    "asyncio",
    "socket",
    "time",
    "random",
    "threading",
    "websockets",
    "ssl",
    "selectors",
    "subprocess",
    "uuid",
}
OUTSIDE_THE_CORE = {"drivers", "integrations", "store", "testing", "cli.py", "diagrams.py", "__main__.py"}


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_modules_import_no_io() -> None:
    core = [p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] not in OUTSIDE_THE_CORE]
    assert len(core) >= 12
    offenders = {
        str(p.relative_to(PACKAGE)): sorted(imports(p) & BANNED) for p in core if imports(p) & BANNED
    }
    assert offenders == {}


def test_the_purity_check_would_notice(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import time\nfrom asyncio import sleep\n")
    assert imports(bad) & BANNED == {"time", "asyncio"}
