"""``RedisStore``: sessions in Redis, for fleets of workers (``pip install livestate[redis]``).

Records are laid out as :mod:`livestate.store.layout` says. Keys, under ``prefix`` (``livestate:``) and the
session id: ``…:fence`` (the fencing counter, ``INCR``-ed by every acquisition), ``…:lease`` (``SET NX PX``,
value ``token|owner``), ``…:meta`` (a hash: config, head, their digests, saved_at, state, handle fingerprint
and time, handle_ttl), ``…:msgs`` (a hash seq → ``digest\nentry\nframe``) and ``…:seqs`` (a sorted set of
the seqs, for trims); ``<prefix>sessions`` is the set of ids. Every session's write is one Lua script that
first checks the writer's token against ``…:fence``, so a stale writer is refused by Redis itself, and
applies the operations and the head atomically. A batch (every session the persistence flushes in one loop
tick) is one pipelined round trip.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from livestate import wire
from livestate.record import SessionSnapshot
from livestate.store.base import (
    DEFAULT_BATCH_WINDOW,
    Append,
    Drop,
    Lease,
    LeaseLost,
    Op,
    SessionInfo,
    SessionLeased,
    StoredSession,
    StoreError,
    Trim,
    check_batch_window,
    checksum,
    decode_frame,
)
from livestate.store.layout import MessageRecord, Write, assemble, write_of

__all__ = ["RedisStore"]

# KEYS: fence, lease, index   ARGV: owner, ttl_ms, session_id
_ACQUIRE = """
local held = redis.call('GET', KEYS[2])
if held then
  local sep = string.find(held, '|', 1, true)
  local holder = string.sub(held, sep + 1)
  if holder ~= ARGV[1] then
    return {0, holder, redis.call('PTTL', KEYS[2])}
  end
end
local token = redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[2], token .. '|' .. ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
return {1, token}
"""

# KEYS: fence, lease   ARGV: token, owner, ttl_ms
_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('STALE ' .. tostring(redis.call('GET', KEYS[1])))
end
redis.call('SET', KEYS[2], ARGV[1] .. '|' .. ARGV[2], 'PX', ARGV[3])
return 1
"""

# KEYS: fence, lease   ARGV: token, owner
_RELEASE = """
if redis.call('GET', KEYS[2]) == ARGV[1] .. '|' .. ARGV[2] then
  return redis.call('DEL', KEYS[2])
end
return 0
"""

# KEYS: fence, meta, msgs, seqs   ARGV: token, ops (JSON), config ('' = none), config digest, head ('' = none),
# head digest, saved_at, state, handle fingerprint ('' = none), handle_ttl
_WRITE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('STALE ' .. tostring(redis.call('GET', KEYS[1])))
end
for _, op in ipairs(cjson.decode(ARGV[2])) do
  if op[1] == 'a' then
    redis.call('HSET', KEYS[3], op[2], op[3])
    redis.call('ZADD', KEYS[4], op[2], op[2])
  elseif op[1] == 't' then
    local gone = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', op[2])
    for first = 1, #gone, 1000 do  -- unpack refuses more than Lua's stack takes (~8000)
      redis.call('HDEL', KEYS[3], unpack(gone, first, math.min(first + 999, #gone)))
    end
    if #gone > 0 then
      redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', op[2])
    end
  else
    for _, seq in ipairs(op[2]) do
      redis.call('HDEL', KEYS[3], seq)
      redis.call('ZREM', KEYS[4], seq)
    end
  end
end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[2], 'config', ARGV[3], 'config_sum', ARGV[4])
end
if ARGV[5] ~= '' then
  local old = redis.call('HGET', KEYS[2], 'handle_fp')
  if (old or '') ~= ARGV[9] or not redis.call('HGET', KEYS[2], 'handle_at') then
    redis.call('HSET', KEYS[2], 'handle_at', ARGV[7])
  end
  redis.call('HSET', KEYS[2], 'head', ARGV[5], 'head_sum', ARGV[6], 'saved_at', ARGV[7], 'state', ARGV[8],
             'handle_fp', ARGV[9], 'handle_ttl', ARGV[10])
end
return 1
"""


def _message_sum(frame: str, entry: str) -> str:
    return checksum(f"{entry}\n{frame}")


class RedisStore:
    """A :class:`~livestate.store.SessionStore` on a Redis server (``redis.asyncio`` client)."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "livestate:",
        batch_window: float = DEFAULT_BATCH_WINDOW,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.batch_window = check_batch_window(batch_window)
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._write = client.register_script(_WRITE)

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = "livestate:", batch_window: float = DEFAULT_BATCH_WINDOW
    ) -> RedisStore:
        """A store on the server at ``url`` (``redis://host:port/db``)."""
        return cls(
            aioredis.Redis.from_url(url, decode_responses=True), prefix=prefix, batch_window=batch_window
        )

    def __repr__(self) -> str:
        return f"RedisStore(prefix={self.prefix!r})"

    def _keys(self, sid: str, *names: str) -> list[str]:
        return [f"{self.prefix}{{{sid}}}:{name}" for name in names]

    async def acquire(self, session_id: str, owner: str, ttl: float) -> Lease:
        """Take the lease (``SET NX PX`` semantics, in a script that also bumps the fencing counter)."""
        keys = [*self._keys(session_id, "fence", "lease"), f"{self.prefix}sessions"]
        got = await self._acquire(keys=keys, args=[owner, max(1, int(ttl * 1000)), session_id])
        if int(got[0]) == 0:
            raise SessionLeased(session_id, str(got[1]), max(0, int(got[2])) / 1000)
        return Lease(session_id=session_id, owner=owner, token=int(got[1]), ttl=ttl)

    def _stale(self, lease: Lease, exc: ResponseError) -> StoreError:
        if "STALE" in str(exc):
            latest = str(exc).split("STALE", 1)[1].strip()
            return LeaseLost(
                f"session {lease.session_id!r}: fencing token {lease.token} is stale (latest {latest}): "
                "another worker took it over"
            )
        return StoreError(f"session {lease.session_id!r}: redis refused the write: {exc}")

    async def renew(self, lease: Lease) -> None:
        """Extend the lease (``LeaseLost`` if the token is stale)."""
        keys = self._keys(lease.session_id, "fence", "lease")
        try:
            await self._renew(keys=keys, args=[lease.token, lease.owner, max(1, int(lease.ttl * 1000))])
        except ResponseError as exc:
            raise self._stale(lease, exc) from None

    async def release(self, lease: Lease) -> None:
        """Give the lease up, if still ours."""
        await self._release(
            keys=self._keys(lease.session_id, "fence", "lease"), args=[lease.token, lease.owner]
        )

    async def write(
        self, lease: Lease, ops: Sequence[Op], snapshot: SessionSnapshot | None, *, saved_at: float
    ) -> None:
        """Apply ``ops`` and store ``snapshot`` atomically (one script, one round trip)."""
        (refused,) = await self.write_batch([write_of(lease, ops, snapshot, saved_at)])
        if refused is not None:
            raise refused

    def _args(self, write: Write) -> tuple[list[str], list[str | int]]:
        encoded: list[Any] = []
        for op in write.ops:
            if type(op) is Append:
                entry = op.entry or ""
                encoded.append(["a", op.seq, f"{_message_sum(op.frame, entry)}\n{entry}\n{op.frame}"])
            elif type(op) is Trim:
                encoded.append(["t", op.seq])
            elif type(op) is Drop:
                encoded.append(["d", list(op.seqs)])
        config = write.config or ""
        head = write.head
        keys = self._keys(write.lease.session_id, "fence", "meta", "msgs", "seqs")
        args: list[str | int] = [
            write.lease.token,
            json.dumps(encoded),
            config,
            checksum(config) if config else "",
            *(
                ("", "", "", "", "", "")
                if head is None
                else (
                    head.text,
                    checksum(head.text),
                    repr(head.saved_at),
                    head.state,
                    head.handle_fingerprint or "",
                    repr(head.handle_ttl),
                )
            ),
        ]
        return keys, args

    async def write_batch(self, writes: Sequence[Write]) -> list[StoreError | None]:
        """Every session's write as one script call, all pipelined in one round trip; one its script refuses
        (a stale token: ``LeaseLost``; anything else: ``StoreError``) fails alone, the others apply."""
        if not writes:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for write in writes:
                keys, args = self._args(write)
                await self._write(keys=keys, args=args, client=pipe)
            replies = await pipe.execute(raise_on_error=False)
        results: list[StoreError | None] = []
        for write, reply in zip(writes, replies, strict=True):
            if isinstance(reply, ResponseError):  # this session's script refused: the others applied
                results.append(self._stale(write.lease, reply))
            elif isinstance(reply, Exception):
                raise StoreError(f"session {write.lease.session_id!r}: redis refused the write: {reply}")
            else:
                results.append(None)
        return results

    def _records(self, sid: str, frames: dict[str, str]) -> list[MessageRecord]:
        records = []
        for key in sorted(frames, key=int):
            seq = int(key)
            digest, _, rest = frames[key].partition("\n")
            entry, _, frame = rest.partition("\n")
            if _message_sum(frame, entry) != digest:
                raise StoreError(f"session {sid!r}: message seq {seq} is corrupt: checksum mismatch")
            records.append(MessageRecord(seq=seq, frame=frame, entry=entry))
        return records

    async def load(self, session_id: str) -> StoredSession | None:
        """The checked snapshot and buffer, read in one transaction (``None`` before the first snapshot)."""
        meta_key, msgs_key = self._keys(session_id, "meta", "msgs")
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hgetall(meta_key)
            pipe.hgetall(msgs_key)
            meta, frames = await pipe.execute()
        if not meta.get("head"):
            return None
        config, head = meta.get("config", ""), meta["head"]
        if not config or checksum(config) != meta.get("config_sum"):
            raise StoreError(f"session {session_id!r}: the config record is corrupt: checksum mismatch")
        if checksum(head) != meta.get("head_sum"):
            raise StoreError(f"session {session_id!r}: the head record is corrupt: checksum mismatch")
        try:
            saved_at = float(meta["saved_at"])
        except (KeyError, ValueError):
            raise StoreError(f"session {session_id!r}: saved_at is missing or not a number") from None
        return assemble(session_id, config, head, saved_at, self._records(session_id, frames))

    async def stamp(self, session_id: str) -> str | None:
        """The head's checksum and time, and the last stored seq: one of them changes with every write (a
        write without the head appends a message)."""
        meta_key, seqs_key = self._keys(session_id, "meta", "seqs")
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hmget(meta_key, ["head_sum", "saved_at"])
            pipe.zrange(seqs_key, -1, -1)
            (digest, saved_at), last = await pipe.execute()
        return None if not digest else f"{digest}@{saved_at}@{last[0] if last else ''}"

    async def unconfirmed(self, session_id: str) -> list[tuple[int, wire.ClientMessage]]:
        """The stored unconfirmed messages, oldest first."""
        (msgs_key,) = self._keys(session_id, "msgs")
        frames = cast("dict[str, str]", await self.client.hgetall(msgs_key))
        return [(r.seq, decode_frame(session_id, r.seq, r.frame)) for r in self._records(session_id, frames)]

    async def list_sessions(self) -> list[SessionInfo]:
        """Every session, by id (handles as fingerprints only)."""
        infos = []
        ids = cast("set[str]", await self.client.smembers(f"{self.prefix}sessions"))
        for sid in sorted(ids):
            meta_key, msgs_key, lease_key = self._keys(sid, "meta", "msgs", "lease")
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.hgetall(meta_key)
                pipe.hlen(msgs_key)
                pipe.get(lease_key)
                pipe.pttl(lease_key)
                meta, count, held, pttl = await pipe.execute()
            infos.append(
                SessionInfo(
                    session_id=sid,
                    state=meta.get("state"),
                    handle_fingerprint=meta.get("handle_fp") or None,
                    saved_at=float(meta["saved_at"]) if "saved_at" in meta else None,
                    handle_at=float(meta["handle_at"]) if "handle_at" in meta else None,
                    messages=int(count),
                    owner=held.partition("|")[2] if held else None,
                    lease_left=max(0, int(pttl)) / 1000 if held else None,
                )
            )
        return infos

    async def delete(self, session_id: str) -> bool:
        """Forget the session. Its fencing counter stays and moves on, so every token issued so far is stale
        (a holder's later write is refused, as SQLite refuses it, instead of recreating a headless session)."""
        keys = self._keys(session_id, "meta", "msgs", "seqs", "lease")
        (fence,) = self._keys(session_id, "fence")
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.srem(f"{self.prefix}sessions", session_id)
            pipe.delete(*keys)
            pipe.incr(fence)
            removed, _, _ = await pipe.execute()
        return bool(removed)

    async def expire(self, now: float | None = None) -> list[str]:
        """Delete unleased sessions whose handle is older than ``handle_ttl``."""
        now = time.time() if now is None else now
        gone = []
        for info in await self.list_sessions():
            meta_key, lease_key = self._keys(info.session_id, "meta", "lease")
            ttl = await self.client.hget(meta_key, "handle_ttl")
            since = info.handle_at if info.handle_at is not None else info.saved_at
            if (
                ttl
                and since is not None
                and since + float(ttl) < now
                and not await self.client.exists(lease_key)
            ):
                await self.delete(info.session_id)
                gone.append(info.session_id)
        return gone

    async def close(self) -> None:
        """Close the client's connections."""
        await self.client.aclose()
