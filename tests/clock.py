"""The one way tests let time pass: the timers a session armed fire in deadline order (livestate's own)."""

from __future__ import annotations

from livestate.testing.reference import due_timers

__all__ = ["due_timers"]
