"""google-genai's own receive path, used as the reference parser (test and bench dependency only)."""

from __future__ import annotations

from typing import Any

from google.genai import _live_converters, types


def sdk_parse(frame: dict[str, Any], *, vertex: bool) -> types.LiveServerMessage:
    """Parse a decoded frame exactly as ``AsyncSession._receive`` does after ``json.loads``."""
    if vertex:
        converted = _live_converters._LiveServerMessage_from_vertex(frame)
    else:
        converted = _live_converters._LiveServerMessage_from_mldev(frame)
    return types.LiveServerMessage._from_response(response=converted, kwargs={})
