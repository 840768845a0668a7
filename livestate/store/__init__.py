"""Where a session outlives its process: the :class:`SessionStore` protocol, :class:`SQLiteStore` (the
default, one machine) and ``RedisStore`` (fleets; ``pip install livestate[redis]``), and what the drivers use
to keep a session in one (``connect(..., store=..., session_id=...)``, ``resume(...)``).

Outside the core: this package does I/O."""

from __future__ import annotations

from livestate.store.base import (
    Lease,
    LeaseLost,
    SessionInfo,
    SessionLeased,
    SessionStore,
    StoredSession,
    StoreError,
)
from livestate.store.persist import DEFAULT_LEASE_TTL, StorePersistence, resuming, take_over
from livestate.store.sqlite import SQLiteStore

__all__ = [
    "DEFAULT_LEASE_TTL",
    "Lease",
    "LeaseLost",
    "SQLiteStore",
    "SessionInfo",
    "SessionLeased",
    "SessionStore",
    "StoreError",
    "StorePersistence",
    "StoredSession",
    "open_store",
    "resuming",
    "take_over",
]


def open_store(url: str) -> SessionStore:
    """A store from a URL: ``sqlite:///path/to/file.db`` (or a plain path) or ``redis://host:port/db``."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        from livestate.store.redis import RedisStore

        return RedisStore.from_url(url)
    path = url.removeprefix("sqlite://") if url.startswith("sqlite://") else url
    return SQLiteStore(path)
