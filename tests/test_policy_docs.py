"""Every ``SessionConfig`` field is documented where ``help()`` and IDEs look: the class docstring (with its
default) and a ``#:`` comment on the field (for autodoc)."""

from __future__ import annotations

import pydoc
import re
from pathlib import Path

import attrs

import livestate.policy
from livestate import SessionConfig

FIELDS = [a.name for a in attrs.fields(SessionConfig)]
DOC = SessionConfig.__doc__ or ""


def test_help_shows_every_field() -> None:
    text = pydoc.render_doc(SessionConfig, renderer=pydoc.plaintext)
    missing = [name for name in FIELDS if f"``{name}``" not in DOC or name not in text]
    assert missing == []
    assert len(FIELDS) == 26  # a new field must be added to the docstring's list too


def test_documented_defaults_match() -> None:
    documented = dict(re.findall(r"``(\w+)`` \[([^\]]+)\]", DOC))
    assert sorted(documented) == sorted(name for name in FIELDS if name != "setup")
    units = {"MiB": 1 << 20}
    for name, text in documented.items():
        default = attrs.fields_dict(SessionConfig)[name].default
        number, _, unit = text.partition(" ")
        if default is None or isinstance(default, bool):
            assert text == str(default), name
        elif isinstance(default, int | float):
            assert float(number) * units.get(unit, 1) == default, name
        else:
            assert text.strip("`").rpartition(".")[2] in (getattr(default, "name", ""), "DEFAULT_CLOSE_RULES")


def test_every_field_has_a_doc_comment() -> None:
    lines = Path(livestate.policy.__file__).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("class SessionConfig"))
    undocumented = []
    for name in FIELDS:
        at = next(i for i in range(start, len(lines)) if lines[i].startswith(f"    {name}: "))
        if not lines[at - 1].strip().startswith("#:"):
            undocumented.append(name)
    assert undocumented == []
