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


def replace_somewhere(value: Any, replacement: Any, path: list[int]) -> Any:
    """Replace one nested value of a JSON document, chosen by ``path``."""
    if not path or not isinstance(value, dict | list) or not value:
        return replacement
    if isinstance(value, dict):
        keys = list(value)
        key = keys[path[0] % len(keys)]
        return {**value, key: replace_somewhere(value[key], replacement, path[1:])}
    index = path[0] % len(value)
    return [*value[:index], replace_somewhere(value[index], replacement, path[1:]), *value[index + 1 :]]
