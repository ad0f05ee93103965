"""The rate limiter's Lua script and its Redis key layout: what one call's EVALSHA is handed and answers.

`gateway.ratelimit` decides every call of a token with one run of `SCRIPT` (`RateScript.run`);
the admin API and CLI write the revocation keys the script reads. Every key carries the hash tag
``{<key>}``, the habilitation's or the token's id, so that one call's keys share a Cluster slot:

- ``rl:{<key>}``: the per-second TAT in microseconds; expires when the bucket is full again.
- ``rlm:{<key>}``: the per-minute TAT, for a habilitation with a per-minute limit.
- ``rl:{<key>}:<session>``: a session's own per-second TAT within the habilitation (a FranceConnect
  access token's digest).
- ``lock:{<key>}:<digest>``: the duplicate-call lock (`gateway.call_lock`), taken by the script
  when it admits a call that asks for one, refused (00015) while an identical call holds it; it
  lives at most the call's deadline and is deleted right after the call's answer has left
  (`RateLimiter.release`). The degrade mode takes no lock.
- ``revoked:{<key>}:<jti>`` (``revoked:{<jti>}`` for a token without habilitation):
  exists while the token is revoked (written by the admin API, or the admin CLI for the
  tokens registered in Redis, which also keep the list `gateway.revocations` mirrors).
- ``revoked:{<habilitation>}:delegation:<id>``: exists once a delegation is revoked (written by
  the admin API, kept `DELEGATION_REVOCATION_KEEP_SECONDS`); an editor token's call resolved to
  that delegation from a snapshot that predates it is refused 403 ``00213``, as the snapshot
  refuses it once reloaded, from the next call (the degrade mode leaves it to the snapshot).
"""

from __future__ import annotations

from typing import Any, Protocol

from redis.exceptions import NoScriptError

SCRIPT = """
-- Revocation check and GCRA rate decisions (per second, and per minute when set) for one call,
-- in one round trip.
--
-- KEYS[1]  rl:{<key>}        theoretical arrival time (TAT) of the per-second bucket, integer µs
-- KEYS[2]  revoked:{<key>}…  exists while the token is revoked
-- KEYS[3]  rlm:{<key>}       TAT of the per-minute bucket (read and written only when ARGV[4] > 0)
-- KEYS[4]  rl:{<key>}:<s>    TAT of a session's own per-second bucket within the habilitation (a
--                            FranceConnect access token's: read and written only when ARGV[5] > 0)
-- KEYS[5]  lock:{<key>}:…    the duplicate-call lock of this call (taken only when ARGV[7] > 0)
-- KEYS[6]  revoked:{<key>}:delegation:<id>  exists once the delegation an editor token's call was
--                            resolved to is revoked; KEYS[2] itself for any other call (not read again)
-- ARGV[1]  rate: requests per second (integer, 1 to gateway.bounds.RATE_LIMIT_MAX_PER_SECOND)
-- ARGV[2]  burst: calls a full per-second bucket admits at once (1 to gateway.bounds.RATE_LIMIT_BURST_MAX)
-- ARGV[3]  count: 1 counts the call; 0 only reads the state (a call refused before the limiter)
-- ARGV[4]  per_minute: requests per minute (a bucket of that many calls); 0 for none
-- ARGV[5]  session rate: requests per second of the session's bucket; 0 for none
-- ARGV[6]  session burst: calls the session's full bucket admits at once
-- ARGV[7]  lock_ms: the lock's lifetime in milliseconds, taken when the call is admitted; 0 for none
--
-- <key> is the habilitation's id (its tokens share the counters), or the token's own id.
-- Returns {revoked, allowed, remaining, reset_us, retry_after_us, window, duplicate}:
--   revoked         1 when the token is revoked, 2 when the call's delegation is (nothing else is
--                   computed or written)
--   allowed         1 when the call is admitted (and every TAT was advanced); a call one bucket
--                   refuses advances none
--   remaining       calls that may still be sent right now (the tighter bucket's)
--   reset_us        microseconds until that bucket is full again
--   retry_after_us  microseconds until the next call would be admitted (0 when allowed)
--   window          1 when the per-second bucket is the tighter (or the one refusing), 60 the per-minute,
--                   -1 the session's
--   duplicate       1 when the lock is held by an identical call still running: refused, nothing
--                   advanced, the state given as for a call that only reads it

-- A script that reads TIME is not deterministic: replicate its writes, not the
-- script (the default from Redis 5, required before it).
if redis.replicate_commands then
  redis.replicate_commands()
end

if redis.call('EXISTS', KEYS[2]) == 1 then
  return {1, 0, 0, 0, 0, 1, 0}
end
if KEYS[6] ~= KEYS[2] and redis.call('EXISTS', KEYS[6]) == 1 then
  return {2, 0, 0, 0, 0, 1, 0}
end

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])

-- One call every `interval`; a call is admitted when it comes no earlier than
-- `tolerance` before its theoretical arrival time: `burst` calls at once from an
-- idle bucket, then one per interval.
local function bucket(key, interval, burst, window)
  local tat = now
  local stored = redis.call('GET', key)
  if stored then
    tat = math.max(tonumber(stored), now)
  end
  local new_tat = tat + interval
  return {key = key, interval = interval, tolerance = interval * burst, tat = tat, new_tat = new_tat,
          allow_at = new_tat - interval * burst, window = window}
end

local buckets = {bucket(KEYS[1], 1000000 / tonumber(ARGV[1]), tonumber(ARGV[2]), 1)}
local per_minute = tonumber(ARGV[4])
if per_minute > 0 then
  buckets[#buckets + 1] = bucket(KEYS[3], 60000000 / per_minute, per_minute, 60)
end
local session_rate = tonumber(ARGV[5])
if session_rate > 0 then
  buckets[#buckets + 1] = bucket(KEYS[4], 1000000 / session_rate, tonumber(ARGV[6]), -1)
end

-- The buckets' state, nothing counted: {remaining, reset_us, window} of the tighter.
local function unspent()
  local best, best_remaining = 1, nil
  for i, b in ipairs(buckets) do
    local remaining = math.max(0, math.floor((now + b.tolerance - b.tat) / b.interval))
    if best_remaining == nil or remaining < best_remaining then
      best, best_remaining = i, remaining
    end
  end
  return best_remaining, math.ceil(buckets[best].tat - now), buckets[best].window
end

if tonumber(ARGV[3]) == 0 then
  local remaining, reset, window = unspent()
  return {0, 1, remaining, reset, 0, window, 0}
end

local refusing = nil
for i, b in ipairs(buckets) do
  if now < b.allow_at and (refusing == nil or b.allow_at > buckets[refusing].allow_at) then
    refusing = i
  end
end
if refusing ~= nil then
  local b = buckets[refusing]
  return {0, 0, 0, math.ceil(b.tat - now), math.ceil(b.allow_at - now), b.window, 0}
end

local lock_ms = tonumber(ARGV[7])
if lock_ms > 0 and not redis.call('SET', KEYS[5], '1', 'NX', 'PX', lock_ms) then
  local remaining, reset, window = unspent()
  return {0, 0, remaining, reset, 0, window, 1}
end

local best, best_remaining = 1, nil
for i, b in ipairs(buckets) do
  -- The key expires when the bucket is full again: an idle habilitation costs no memory.
  -- At least 1 ms: SET refuses an expiry of 0, whatever rounding made of new_tat.
  local expiry_ms = math.max(1, math.ceil((b.new_tat - now) / 1000))
  redis.call('SET', b.key, string.format('%.0f', b.new_tat), 'PX', expiry_ms)
  local remaining = math.floor((now - b.allow_at) / b.interval)
  if best_remaining == nil or remaining < best_remaining then
    best, best_remaining = i, remaining
  end
end
return {0, 1, best_remaining, math.ceil(buckets[best].new_tat - now), 0, buckets[best].window, 0}
"""

SCRIPT_KEYS = 6
"""How many of the script's arguments are keys (``KEYS[1]`` to ``KEYS[6]``)."""
WINDOW_MINUTE = 60
"""The script's ``window`` when the per-minute bucket is the tighter (or the one refusing)."""
WINDOW_SESSION = -1
"""The script's ``window`` when a session's bucket is the tighter (a per-second bucket)."""
DELEGATION_REVOKED = 2
"""The script's ``revoked`` when the call's delegation is revoked."""


class ScriptCalls(Protocol):
    """What the limiter asks of Redis on the request path: a pipelined connection or a redis-py client."""

    async def script_load(self, script: str) -> str:
        """Load a script; its SHA1."""

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: str | int) -> Any:
        """Run a loaded script (NoScriptError when it is not)."""


def rate_key(key: str) -> str:
    """Key of the per-second bucket's theoretical arrival time (``key``: the habilitation, or the token)."""
    return f"rl:{{{key}}}"


def minute_key(key: str) -> str:
    """Key of the per-minute bucket's theoretical arrival time."""
    return f"rlm:{{{key}}}"


def lock_key(key: str) -> str:
    """The key the script is handed when the call takes no duplicate-call lock (never written)."""
    return f"lock:{{{key}}}"


def session_key(key: str, session: str) -> str:
    """Key of a session's own per-second bucket within ``key``'s (its slot: a Cluster runs the script)."""
    return f"rl:{{{key}}}:{session}"


DELEGATION_REVOCATION_KEEP_SECONDS = 30 * 86400
"""How long a delegation's revocation stays in Redis: far past any snapshot's reload, which then holds it."""


def revoked_delegation_key(delegation_id: str, habilitation_id: str) -> str:
    """Key that exists once the delegation is revoked, in the slot of its habilitation's rate key."""
    return f"revoked:{{{habilitation_id}}}:delegation:{delegation_id}"


def revoked_key(token_id: str, key: str | None = None) -> str:
    """Key that exists while the token is revoked, in the slot of its rate key (``key``, or the token)."""
    if key is None or key == token_id:
        return f"revoked:{{{token_id}}}"
    return f"revoked:{{{key}}}:{token_id}"


class RateScript:
    """`SCRIPT`, loaded once into the Redis a limiter talks to and run by its SHA1.

    Args:
        calls: The pipelined connection, or the redis-py client (Cluster, TLS).
    """

    def __init__(self, calls: ScriptCalls) -> None:
        self._calls = calls
        self._sha: str | None = None

    async def run(
        self,
        token_id: str,
        key: str,
        *,
        rate: int,
        burst: int,
        count: bool,
        per_minute: int,
        session: str,
        session_rate: int,
        session_burst: int,
        lock: str,
        lock_ms: int,
        delegation: str,
    ) -> Any:
        """One decision: the script's ``KEYS`` laid out for the token and its ``key``, its ``ARGV``.

        The arguments are the script's ``ARGV`` and the parts of its keys (see `SCRIPT`): ``session``,
        ``lock`` and ``delegation`` "" for none.

        Returns:
            The script's reply, its seven integers.

        Raises:
            RedisError, OSError: Redis failed (a flushed script cache is loaded again, once).
        """
        per_second_key, token_revoked_key = rate_key(key), revoked_key(token_id, key)
        keys_and_args = (
            per_second_key,
            token_revoked_key,
            minute_key(key),
            session_key(key, session) if session else per_second_key,  # not read without a session
            lock or lock_key(key),
            revoked_delegation_key(delegation, key) if delegation else token_revoked_key,
            rate,
            burst,
            int(count),
            per_minute,
            session_rate,
            session_burst,
            lock_ms,
        )
        if self._sha is None:
            self._sha = await self._calls.script_load(SCRIPT)
        try:
            return await self._calls.evalsha(self._sha, SCRIPT_KEYS, *keys_and_args)
        except NoScriptError:
            # Redis restarted or SCRIPT FLUSH: load it again, once.
            self._sha = await self._calls.script_load(SCRIPT)
            return await self._calls.evalsha(self._sha, SCRIPT_KEYS, *keys_and_args)
