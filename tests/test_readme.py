"""The README's FakeLiveServer guide runs as written."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_fake_server_guide_example_runs() -> None:
    text = README.read_text(encoding="utf-8")
    guide = text[text.index("### Testing your own code") :]
    source = re.search(r"```python\n(.*?)```", guide, re.S)
    assert source is not None
    namespace: dict[str, object] = {}
    exec(compile(source.group(1), "README.md", "exec"), namespace)
    test = namespace["test_nothing_lost"]
    assert callable(test)
    asyncio.run(asyncio.wait_for(test(), 30))  # its own assertions: nothing lost, one rejected resume
