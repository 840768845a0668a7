"""Frame helpers for tests: fixture frames as bytes, and the hostile frames' generators."""

from __future__ import annotations

import json
from typing import Any


def invalid_frame_data(line: dict[str, Any]) -> bytes | str:
    """The exact frame text of one ``server_invalid.jsonl`` line."""
    if "frame" in line:
        return json.dumps(line["frame"])
    if "raw" in line:
        return str(line["raw"])
    if "raw_hex" in line:
        return bytes.fromhex(line["raw_hex"])
    gen = line["generate"]
    template = json.dumps(gen["template"])
    if gen["kind"] == "huge_string":
        filler = json.dumps(gen["char"] * gen["bytes"])
    elif gen["kind"] == "deep_nesting":
        filler = gen["open"] * gen["depth"] + gen["close"] * gen["depth"]
    else:
        raise ValueError(f"unknown generator {gen['kind']!r}")
    return template.replace(json.dumps(gen["placeholder"]), filler)


def camelize_keys(value: Any) -> Any:
    """A copy of a JSON value with every snake_case object key in camelCase (opaque objects too)."""
    if isinstance(value, dict):
        return {
            k.split("_")[0] + "".join(p.title() for p in k.split("_")[1:]): camelize_keys(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [camelize_keys(v) for v in value]
    return value
