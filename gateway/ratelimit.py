"""Rate limiting and revocation, in one Redis round trip per call.

Every call of a token runs one Lua script (`SCRIPT`) with EVALSHA. The script reads
the revocation key of the token and applies GCRA, the generic cell rate algorithm,
which stores one number per bucket: its theoretical arrival time (TAT). The counters
are keyed by the token's habilitation (its registry id: every token of a habilitation
shares them, ACCESS-MODEL.md §7), or by the token itself when it has none (tokens
carrying their own rights, the citizens of the access history). The per-second rate is
the habilitation's (or ``RATE_LIMIT_PER_SECOND``); its bucket holds as many seconds of
it as the default bucket holds of the default rate, ``RATE_LIMIT_BURST`` /
``RATE_LIMIT_PER_SECOND`` (`RateLimiter.burst_for`), for a lower rate and a higher one
alike: a habilitation at 10,000 per second gets a bucket of 10,000 with the defaults.
A habilitation's per-minute limit, when it has one, is a second bucket of that many
calls refilled over the minute, decided in the same script: a call is admitted only
when both admit it, and the tighter one's state goes back in the ``RateLimit-*``
metadata. Rates and bursts are bounded (`gateway.bounds`), so no accepted value can
make the script fail. Redis's own clock (TIME) makes every gateway replica take the
same decision.

Redis keys (each carries the hash tag ``{<key>}``, the habilitation's or the token's id,
so that one call's keys share a Cluster slot):

- ``rl:{<key>}``: the per-second TAT in microseconds; expires when the bucket is full again.
- ``rlm:{<key>}``: the per-minute TAT, for a habilitation with a per-minute limit.
- ``lock:{<key>}:<digest>``: the duplicate-call lock (`gateway.call_lock`), taken by the script
  when it admits a call that asks for one, refused (00015) while an identical call holds it; it
  lives at most the call's deadline and is deleted right after the call's answer has left
  (`RateLimiter.release`: the locks of the calls that end in one turn of the event loop in one
  ``DEL``, off the request path). The degrade mode takes no lock.
- ``revoked:{<key>}:<jti>`` (``revoked:{<jti>}`` for a token without habilitation):
  exists while the token is revoked (written by the admin API, or the admin CLI for the
  tokens registered in Redis, which also add the jti to the set ``revoked`` and publish
  it on the channel ``revocations``, both read here only in degrade mode, where the
  per-minute limit is not applied).
- ``revoked:{<habilitation>}:delegation:<id>``: exists once a delegation is revoked (written by
  the admin API, kept `DELEGATION_REVOCATION_KEEP_SECONDS`); an editor token's call resolved to
  that delegation from a snapshot that predates it is refused 403 ``00213``, as the snapshot
  refuses it once reloaded, from the next call (the degrade mode leaves it to the snapshot).

When Redis cannot answer within ``REDIS_TIMEOUT_SECONDS``, ``REDIS_FAILURE_MODE``
decides: ``fail_closed`` refuses with UNAVAILABLE; ``degrade`` limits locally at
rate/(``GATEWAY_REPLICAS`` x ``GATEWAY_WORKERS``) with the last known revocation list, for at most
``DEGRADED_MAX_SECONDS``. That list is kept current by each revocation pushed as it
happens, so a token revoked just before an outage stays refused through it. After a
failure the limiter tries Redis again every ``REDIS_RETRY_SECONDS`` (one probing call
at a time), and goes back to it by itself.

At most ``REDIS_MAX_CONNECTIONS`` calls talk to Redis at once; the others queue,
within their deadline, and the wait is not part of the Redis timeout: a burst that
exhausts the connection pool is never taken for Redis being down. The script calls of
a process share one pipelined connection (`gateway.redis.pipeline`) where the Redis
client allows one (plain or Sentinel, without TLS), and go through the client's own
commands otherwise (Cluster, TLS).

A busy process is not a Redis outage: on the pipelined connection, the timeout runs
from the moment a command is written, and a reply that arrived while the event loop
was busy with other calls counts, since the loop reads its sockets once more before
it declares the reply overdue (`gateway.redis.pipeline`). Through the client's own
commands (Cluster, TLS) the timeout is ``asyncio.timeout``'s, which cannot tell.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import redis.asyncio
import structlog
from google.rpc import error_details_pb2
from prometheus_client import Counter, Gauge, Histogram
from redis.exceptions import MaxConnectionsError, NoScriptError, RedisError

from gateway.bounds import RATE_LIMIT_BURST_MAX
from gateway.redis.pipeline import pipeline_for
from gateway.settings import GatewaySettings, RedisFailureMode
from runtime.errors import (
    ApiError,
    duplicate_call,
    recipient_not_delegated,
    revoked_token,
    store_unavailable,
    too_many_requests,
)

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

REVOKED_SET = "revoked"
"""The set of revoked jtis, mirrored locally for the degrade mode."""
REVOCATIONS_CHANNEL = "revocations"
"""Pub/sub channel on which the admin CLI publishes each revoked jti as it revokes it."""

_LOCAL_STATE_PRUNE_SIZE = 10_000
_MINUTE = 60
_SESSION = -1
"""The script's ``window`` when a session's bucket is the tighter (a per-second bucket)."""
_DELEGATION_REVOKED = 2
"""The script's ``revoked`` when the call's delegation is revoked."""
_SCRIPT_KEYS = 6

_LOG = structlog.get_logger(__name__)

DECISIONS = Counter(
    "gateway_rate_limit_decisions",
    "Rate-limit decisions, by source (redis, local) and result (allowed, limited, revoked, duplicate, "
    "unavailable).",
    ["source", "result"],
)
REDIS_ERRORS = Counter(
    "gateway_rate_limit_redis_errors", "Rate-limit calls to Redis that failed or timed out."
)
REDIS_LATENCY = Histogram(
    "gateway_rate_limit_redis_seconds",
    "Round trip of the rate-limit script to Redis, by outcome (ok, error).",
    ["outcome"],
    # One loopback or in-zone round trip is well under a millisecond; the timeout ends the scale.
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
_REDIS_OK, _REDIS_FAILED = REDIS_LATENCY.labels("ok"), REDIS_LATENCY.labels("error")
_REDIS_DECISIONS = {
    result: DECISIONS.labels("redis", result) for result in ("allowed", "limited", "revoked", "duplicate")
}
REDIS_BREAKER_OPEN = Gauge(
    "gateway_rate_limit_redis_breaker_open",
    "1 while the limiter's circuit breaker to Redis is open (Redis unreachable, retried every "
    "REDIS_RETRY_SECONDS), 0 while calls go to Redis.",
)


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


@dataclass(frozen=True, slots=True)
class RateDecision:
    """What the limiter says about one call.

    Attributes:
        allowed: The call may go on.
        revoked: The token is revoked, or the call's delegation (then ``allowed`` is false).
        limit: Calls the token's bucket holds: what it may send at once when idle.
        remaining: Calls it may still send right now.
        reset_seconds: Seconds until the bucket is full again.
        retry_after_seconds: Seconds until the next call would be admitted (0 when allowed).
        token_id: The token's jti.
        rate_per_second: The steady rate applied.
        window_seconds: 1 when the per-second bucket is the tighter (or the one that refused), 60
            when it is the habilitation's per-minute bucket (then ``limit`` is its per-minute limit).
        rate_key: What the counters are keyed by: the habilitation's id, or the token's.
        duplicate: An identical call of the token holds the duplicate-call lock (then ``allowed``
            is false and nothing was counted).
        delegation_revoked: The delegation the editor token's call was resolved to is revoked (then
            ``revoked`` is true as well).
        decided_at: When the decision was made, Unix epoch seconds (wall clock).
        metadata: Response metadata: ``ratelimit-limit``, ``ratelimit-remaining``,
            ``ratelimit-reset`` (the Unix epoch second at which the bucket is full again,
            rounded up, as the published spec documents the header) and ``retry-after``
            (whole seconds to wait, at least 1) when over the limit. Empty when revoked.
    """

    allowed: bool
    revoked: bool
    limit: int
    remaining: int
    reset_seconds: float
    retry_after_seconds: float
    token_id: str = ""
    rate_per_second: int = 0
    window_seconds: int = 1
    rate_key: str = ""
    duplicate: bool = False
    delegation_revoked: bool = False
    decided_at: float = field(default_factory=time.time)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Rate-limit response metadata, as the real API's HTTP headers."""
        if self.revoked:
            return ()
        pairs = [
            ("ratelimit-limit", str(self.limit)),
            ("ratelimit-remaining", str(self.remaining)),
            ("ratelimit-reset", str(math.ceil(self.decided_at + self.reset_seconds))),
        ]
        if not self.allowed and not self.duplicate:
            pairs.append(("retry-after", str(_whole_seconds_to_wait(self.retry_after_seconds))))
        return tuple(pairs)

    def refusal(self) -> ApiError:
        """The refusal: 00429 (RetryInfo, QuotaFailure), 00105 / 00213 token / delegation revoked, 00015.

        00015: an identical call of the token still runs.

        Raises:
            ValueError: the call was allowed.
        """
        if self.delegation_revoked:
            return recipient_not_delegated()
        if self.revoked:
            return revoked_token()
        if self.allowed:
            raise ValueError("an allowed call has no refusal")
        if self.duplicate:
            return duplicate_call(self.metadata)
        shared = bool(self.rate_key) and self.rate_key != self.token_id
        subject = f"habilitation:{self.rate_key}" if shared else f"token:{self.token_id}"
        holder = "par habilitation" if shared else "par jeton"
        if self.window_seconds == _MINUTE:
            violation = error_details_pb2.QuotaFailure.Violation(
                subject=subject,
                description=f"Limite de {self.limit} requêtes par minute {holder}",
                quota_metric="requests",
                quota_id="RequestsPerMinutePerHabilitation",
                quota_value=self.limit,
            )
        else:
            violation = error_details_pb2.QuotaFailure.Violation(
                subject=subject,
                description=f"Limite de {self.rate_per_second} requêtes par seconde {holder}, "
                f"rafales de {self.limit} requêtes au plus",
                quota_metric="requests",
                quota_id="RequestsPerSecondPerHabilitation" if shared else "RequestsPerSecondPerToken",
                quota_value=self.rate_per_second,
            )
        return too_many_requests(
            retry_after_seconds=self.retry_after_seconds,
            quota=error_details_pb2.QuotaFailure(violations=[violation]),
            metadata=self.metadata,
        )


def _whole_seconds_to_wait(seconds: float) -> int:
    # Retry-After is whole seconds; rounding down would make clients come back too early.
    return max(1, math.ceil(seconds))


class _LocalGcra:
    """A per-process GCRA on the monotonic clock, for the degrade mode."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._tat: dict[str, float] = {}

    def clear(self) -> None:
        self._tat.clear()

    def decide(self, token_id: str, rate: float, burst: int, limit_rate: int) -> RateDecision:
        now = self._clock()
        if len(self._tat) > _LOCAL_STATE_PRUNE_SIZE:
            # Tokens whose bucket is full again need no state; drop them.
            self._tat = {jti: tat for jti, tat in self._tat.items() if tat > now}
        interval = 1.0 / rate
        tat = max(self._tat.get(token_id, now), now)
        new_tat = tat + interval
        allow_at = new_tat - interval * burst
        if now < allow_at:
            return RateDecision(False, False, burst, 0, tat - now, allow_at - now, token_id, limit_rate)
        self._tat[token_id] = new_tat
        remaining = math.floor((now - allow_at) / interval + 1e-9)
        return RateDecision(True, False, burst, remaining, new_tat - now, 0.0, token_id, limit_rate)


class RateLimiter:
    """The gateway's rate limiter and revocation check, shared by all calls of a process.

    Args:
        redis: The Redis client; the caller owns it and closes it.
        settings: The gateway settings (rate, burst, timeout, failure mode, replicas).
        clock: Monotonic clock in seconds, for the breaker and the degrade mode (tests).
    """

    def __init__(
        self,
        redis: redis.asyncio.Redis,
        settings: GatewaySettings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._pipeline = pipeline_for(redis)
        self._scripts: ScriptCalls = self._pipeline or cast(ScriptCalls, redis)
        self._settings = settings
        self._clock = clock
        self._sha: str | None = None
        # Circuit breaker: while open (down_since set), Redis is tried again at most
        # every redis_retry_seconds, by one call at a time.
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._probing = False
        self._local = _LocalGcra(clock)
        self._revoked_snapshot: frozenset[str] | None = None
        self._revoked_snapshot_at: float | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._closed = False
        # Calls beyond the connection pool wait here, outside the Redis timeout.
        self._connections = asyncio.Semaphore(settings.redis_max_connections)
        self._unreleased: list[str] = []
        self._releases: set[asyncio.Task[None]] = set()

    @property
    def degrade(self) -> bool:
        """Whether the limiter degrades to local limits when Redis is unreachable."""
        return self._settings.redis_failure_mode is RedisFailureMode.DEGRADE

    @property
    def redis_down(self) -> bool:
        """Whether the last attempt to reach Redis failed."""
        return self._down_since is not None

    @property
    def revocation_snapshot_age(self) -> float | None:
        """Seconds since the local copy of the revocation list was refreshed; None if never."""
        if self._revoked_snapshot_at is None:
            return None
        return self._clock() - self._revoked_snapshot_at

    async def start(self) -> None:
        """In degrade mode, follow the revocation list from start-up, off the request path."""
        if self.degrade and self._refresher is None and not self._closed:
            self._refresher = asyncio.create_task(self._follow_revocations(), name="revocation-follower")

    async def check(
        self,
        token_id: str,
        rate_per_second: int,
        *,
        key: str | None = None,
        per_minute: int = 0,
        session: str = "",
        lock: str = "",
        lock_ms: int = 0,
        delegation: str = "",
    ) -> RateDecision:
        """Check the token's revocation and count one call against its rate.

        One EVALSHA on the request path (plus SCRIPT LOAD on first use and after a
        script cache flush).

        Args:
            token_id: The token's jti (a UUID, checked by authentication).
            key: What the counters are keyed by: the habilitation's id, whose tokens share them;
                the token's own id when None.
            per_minute: The habilitation's per-minute limit, decided in the same round trip; 0: none.
            session: A session within the habilitation with a bucket of its own at the default rate,
                decided in the same round trip (a FranceConnect access token's digest); "": none.
            rate_per_second: The token's own limit, or 0 (or less) for the default.
            lock: The call's duplicate-call lock key (`gateway.call_lock`), taken in the same round
                trip when the call is admitted (then `release` it once answered); "": none.
            lock_ms: The lock's lifetime, milliseconds (the call's deadline).
            delegation: The delegation an editor token's call was resolved to, whose revocation is
                checked in the same round trip (``key`` is then its habilitation); "": none.

        Returns:
            The decision; the caller sends ``metadata`` back and raises
            ``refusal()`` when the call is not allowed.

        Raises:
            ApiError: UNAVAILABLE (00503) when the limiter cannot decide: Redis is
                unreachable in fail-closed mode, or for too long in degrade mode.
        """
        rate = rate_per_second if rate_per_second > 0 else self._settings.rate_limit_per_second
        if self._may_try_redis():
            if self._connections.locked():
                try:
                    async with asyncio.timeout(self._settings.default_deadline_seconds):
                        await self._connections.acquire()
                except TimeoutError:
                    DECISIONS.labels("none", "unavailable").inc()
                    raise store_unavailable() from None
            else:
                await self._connections.acquire()  # free: taken at once, nothing to time
            try:
                decision = await self._decide_in_redis(
                    token_id,
                    rate,
                    key or token_id,
                    per_minute,
                    session,
                    lock=lock,
                    lock_ms=lock_ms if lock else 0,
                    delegation=delegation,
                )
            finally:
                self._connections.release()
            if decision is not None:
                return decision
        return self._decide_without_redis(token_id, rate)

    def burst_for(self, rate: int) -> int:
        """Calls the per-second bucket of a habilitation at ``rate`` per second holds at once.

        As many seconds of its rate as the default bucket holds of the default rate
        (``RATE_LIMIT_BURST`` / ``RATE_LIMIT_PER_SECOND``), rounded up, whether the rate is
        lower or higher than the default, within `gateway.bounds.RATE_LIMIT_BURST_MAX`: with
        the default settings (20 and 20), a habilitation at 1 per second gets a bucket of 1,
        one at 10,000 a bucket of 10,000.
        """
        default_rate, burst = self._settings.rate_limit_per_second, self._settings.rate_limit_burst
        return min(RATE_LIMIT_BURST_MAX, max(1, -(-burst * rate // default_rate)))

    async def _decide_in_redis(
        self,
        token_id: str,
        rate: int,
        key: str,
        per_minute: int,
        session: str,
        *,
        lock: str,
        lock_ms: int,
        delegation: str,
    ) -> RateDecision | None:
        """The decision of Redis, or None when Redis could not be asked or failed."""
        if not self._may_try_redis():  # the breaker opened while this call waited
            return None
        probe = self.redis_down
        if probe:
            self._probing = True
        started = time.perf_counter()
        try:
            decision = await self._check_in_redis(
                token_id,
                rate,
                key,
                per_minute,
                session=session,
                lock=lock,
                lock_ms=lock_ms,
                delegation=delegation,
            )
        except MaxConnectionsError:
            # Every connection is busy (a Cluster node's pool does not queue): Redis is
            # fine, this call alone is refused.
            DECISIONS.labels("none", "unavailable").inc()
            raise store_unavailable() from None
        except (RedisError, OSError, TimeoutError) as exc:
            _REDIS_FAILED.observe(time.perf_counter() - started)
            self._redis_failed(exc)
            return None
        finally:
            if probe:
                self._probing = False
        _REDIS_OK.observe(time.perf_counter() - started)
        self._redis_works()
        _REDIS_DECISIONS[_result(decision)].inc()
        return decision

    async def close(self) -> None:
        """Stop the background refresh of the revocation list, close the pipelined connection.

        The Redis client stays open: its owner closes it.
        """
        self._closed = True
        if self._releases:  # the locks of the last answers, before the connection goes
            await asyncio.wait(set(self._releases), timeout=self._settings.redis_timeout_seconds)
        if self._pipeline is not None:
            await self._pipeline.aclose()
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None

    # -- Redis ------------------------------------------------------------------------------------

    def _may_try_redis(self) -> bool:
        if self._down_since is None:
            return True
        return not self._probing and self._clock() >= self._retry_at

    async def peek(
        self, token_id: str, rate_per_second: int, *, key: str | None = None, per_minute: int = 0
    ) -> RateDecision | None:
        """The token's rate-limit state, without counting a call.

        For the metadata of a call refused before the limiter (scope, recipient): it
        spent nothing, but its answer tells the caller where it stands, as every
        answer of the real API does. One read of Redis, off the admitted calls' path.

        Returns:
            The state, or None when Redis cannot tell right now (the breaker is open,
            or the read failed): the refusal then goes without rate-limit metadata.
        """
        rate = rate_per_second if rate_per_second > 0 else self._settings.rate_limit_per_second
        if not self._may_try_redis():
            return None
        try:
            return await self._check_in_redis(token_id, rate, key or token_id, per_minute, count=False)
        except (RedisError, OSError, TimeoutError):
            return None

    async def _check_in_redis(
        self,
        token_id: str,
        rate: int,
        key: str,
        per_minute: int,
        *,
        count: bool = True,
        session: str = "",
        lock: str = "",
        lock_ms: int = 0,
        delegation: str = "",
    ) -> RateDecision:
        burst = self.burst_for(rate)
        session_rate = self._settings.rate_limit_per_second if session else 0
        session_burst = self.burst_for(session_rate) if session else 0
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
        if self._pipeline is not None:  # it times its replies itself, the loop's busy time aside
            reply = await self._run_script(keys_and_args)
        else:
            async with asyncio.timeout(self._settings.redis_timeout_seconds):
                reply = await self._run_script(keys_and_args)
        revoked, allowed, remaining, reset_us, retry_us, window, duplicate = (int(value) for value in reply)
        return RateDecision(
            allowed=bool(allowed),
            revoked=bool(revoked),
            limit={_MINUTE: per_minute, _SESSION: session_burst}.get(window, burst),
            remaining=remaining,
            reset_seconds=reset_us / 1e6,
            retry_after_seconds=retry_us / 1e6,
            token_id=token_id,
            rate_per_second=rate,
            window_seconds=1 if window == _SESSION else window,
            rate_key=key,
            duplicate=bool(duplicate),
            delegation_revoked=revoked == _DELEGATION_REVOKED,
        )

    async def _run_script(self, keys_and_args: tuple[str | int, ...]) -> Any:
        if self._sha is None:
            self._sha = await self._scripts.script_load(SCRIPT)
        try:
            return await self._scripts.evalsha(self._sha, _SCRIPT_KEYS, *keys_and_args)
        except NoScriptError:
            # Redis restarted or SCRIPT FLUSH: load it again, once.
            self._sha = await self._scripts.script_load(SCRIPT)
            return await self._scripts.evalsha(self._sha, _SCRIPT_KEYS, *keys_and_args)

    def release(self, lock: str) -> None:
        """Delete the duplicate-call lock an admitted call took, once its answer is on its way.

        The locks released in one turn of the event loop go in one ``DEL``, sent in the next turn
        (right after the answers) without the calls waiting for it; a lock that cannot be deleted
        (Redis away) expires with its call's deadline. Sending it later, with the batched journal
        events, would refuse for that long an identical call sent as soon as the answer came.
        """
        if not self._unreleased:
            # In a context of its own: the batch belongs to no call in particular.
            asyncio.get_running_loop().call_soon(self._release_batch, context=contextvars.Context())
        self._unreleased.append(lock)

    def _release_batch(self) -> None:
        locks, self._unreleased = self._unreleased, []
        if self._closed or not self._may_try_redis():
            return
        task = asyncio.create_task(self._delete(locks), name="lock-release")
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def _delete(self, locks: list[str]) -> None:
        try:
            if self._pipeline is not None:
                await self._pipeline.execute("DEL", *locks)
            else:  # a Cluster client splits the keys by slot
                async with asyncio.timeout(self._settings.redis_timeout_seconds):
                    await self._redis.delete(*locks)
        except (RedisError, OSError, TimeoutError) as exc:
            _LOG.debug("lock_release_failed", error=type(exc).__name__)

    def _redis_failed(self, exc: BaseException) -> None:
        REDIS_ERRORS.inc()
        now = self._clock()
        self._retry_at = now + self._settings.redis_retry_seconds
        if self._down_since is None:
            self._down_since = now
            REDIS_BREAKER_OPEN.set(1)
            _LOG.warning(
                "rate_limiter_redis_down",
                error=type(exc).__name__,
                failure_mode=self._settings.redis_failure_mode.value,
            )

    def _redis_works(self) -> None:
        if self._down_since is not None:
            _LOG.info("rate_limiter_redis_back", down_seconds=round(self._clock() - self._down_since, 3))
            self._down_since = None
            REDIS_BREAKER_OPEN.set(0)
            self._local.clear()

    # -- without Redis ------------------------------------------------------------------------------

    def _decide_without_redis(self, token_id: str, rate: int) -> RateDecision:
        if not self.degrade:
            DECISIONS.labels("none", "unavailable").inc()
            raise store_unavailable()
        down_for = self._clock() - (self._down_since or self._clock())
        if down_for > self._settings.degraded_max_seconds or self._revoked_snapshot is None:
            # Past the bound, or never saw the revocation list: a revoked token must not get through.
            DECISIONS.labels("local", "unavailable").inc()
            raise store_unavailable()
        if token_id in self._revoked_snapshot:
            DECISIONS.labels("local", "revoked").inc()
            return RateDecision(False, True, 0, 0, 0.0, 0.0, token_id, rate)
        # Every worker of every replica limits on its own: each takes its share.
        replicas = self._settings.gateway_replicas * self._settings.gateway_workers
        burst = max(1, math.ceil(self.burst_for(rate) / replicas))
        decision = self._local.decide(token_id, rate / replicas, burst, rate)
        DECISIONS.labels("local", _result(decision)).inc()
        return decision

    async def _follow_revocations(self) -> None:
        """Keep a local copy of the revoked set, off the request path, while Redis answers.

        Each revocation comes as the admin CLI publishes it on `REVOCATIONS_CHANNEL`;
        the whole set is read after each (re)subscription, so that nothing published
        while the subscription was broken is missed, and every
        ``REVOCATION_REFRESH_SECONDS``.
        """
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(REVOCATIONS_CHANNEL)
                while True:
                    await self._read_revoked_set()
                    await self._take_published(pubsub, self._settings.revocation_refresh_seconds)
            except (RedisError, OSError, TimeoutError) as exc:
                _LOG.debug("revocation_refresh_failed", error=type(exc).__name__)
            finally:
                await pubsub.aclose()
            await asyncio.sleep(self._settings.redis_retry_seconds)

    async def _read_revoked_set(self) -> None:
        async with asyncio.timeout(self._settings.redis_timeout_seconds * 4):
            members = await self._redis.smembers(REVOKED_SET)
        self._revoked_snapshot = frozenset(_text(member) for member in members)
        self._revoked_snapshot_at = self._clock()

    async def _take_published(self, pubsub: redis.asyncio.client.PubSub, seconds: float) -> None:
        """Add the revocations published in the next ``seconds`` to the local copy."""
        until = self._clock() + seconds
        while (left := until - self._clock()) > 0:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
            if message is not None and message["type"] == "message" and self._revoked_snapshot is not None:
                self._revoked_snapshot = self._revoked_snapshot | {_text(message["data"])}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _result(decision: RateDecision) -> str:
    if decision.revoked:
        return "revoked"
    if decision.duplicate:
        return "duplicate"
    return "allowed" if decision.allowed else "limited"
