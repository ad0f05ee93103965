"""Rate limiting and revocation, in one Redis round trip per call.

Every call of a token runs one Lua script (`gateway.rate_script.SCRIPT`) with EVALSHA. The script reads
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

The script, and the Redis keys it reads and writes (the buckets' TATs, the duplicate-call lock,
the revocations of tokens and delegations), are in `gateway.rate_script`.

When Redis cannot answer within ``REDIS_TIMEOUT_SECONDS``, ``REDIS_FAILURE_MODE``
decides: ``fail_closed`` refuses with UNAVAILABLE; ``degrade`` limits locally at
rate/(``GATEWAY_REPLICAS`` x ``GATEWAY_WORKERS``) with the last known revocation list, for at most
``DEGRADED_MAX_SECONDS``. That list (`gateway.revocations`) is kept current by each revocation pushed
as it happens, so a token revoked just before an outage stays refused through it. After a
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
import contextvars
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

import redis.asyncio
import structlog
from google.rpc import error_details_pb2
from prometheus_client import Counter, Gauge, Histogram
from redis.exceptions import MaxConnectionsError, RedisError

from gateway.bounds import RATE_LIMIT_BURST_MAX
from gateway.rate_script import DELEGATION_REVOKED, WINDOW_MINUTE, WINDOW_SESSION, RateScript, ScriptCalls
from gateway.redis.pipeline import PipelinedRedis, pipeline_for
from gateway.revocations import RevocationMirror
from gateway.settings import GatewaySettings, RedisFailureMode
from runtime.errors import (
    ApiError,
    duplicate_call,
    recipient_not_delegated,
    revoked_token,
    store_unavailable,
    too_many_requests,
)

_LOCAL_STATE_PRUNE_SIZE = 10_000

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

    @classmethod
    def of_script(
        cls,
        reply: Sequence[int | bytes],
        token_id: str,
        rate: int,
        key: str,
        *,
        burst: int,
        per_minute: int,
        session_burst: int,
    ) -> RateDecision:
        """The decision of `gateway.rate_script.SCRIPT`'s ``reply`` for ``token_id`` counted by ``key``.

        ``burst``, ``per_minute`` and ``session_burst``: the ``limit`` of each bucket the script decided.
        """
        revoked, allowed, remaining, reset_us, retry_us, window, duplicate = (int(value) for value in reply)
        return cls(
            allowed=bool(allowed),
            revoked=bool(revoked),
            limit={WINDOW_MINUTE: per_minute, WINDOW_SESSION: session_burst}.get(window, burst),
            remaining=remaining,
            reset_seconds=reset_us / 1e6,
            retry_after_seconds=retry_us / 1e6,
            token_id=token_id,
            rate_per_second=rate,
            window_seconds=1 if window == WINDOW_SESSION else window,
            rate_key=key,
            duplicate=bool(duplicate),
            delegation_revoked=revoked == DELEGATION_REVOKED,
        )

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
        if self.window_seconds == WINDOW_MINUTE:
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


class _Breaker:
    """The limiter's circuit breaker to Redis: open (``down_since`` set) from a failure until a call works.

    While open, Redis is tried again at most every ``retry_seconds``, by one call at a time.
    """

    __slots__ = ("_clock", "_failure_mode", "_retry_at", "_retry_seconds", "down_since", "probing")

    def __init__(
        self, clock: Callable[[], float], retry_seconds: float, failure_mode: RedisFailureMode
    ) -> None:
        self._clock, self._retry_seconds, self._failure_mode = clock, retry_seconds, failure_mode
        self.down_since: float | None = None
        self._retry_at = 0.0
        self.probing = False
        """A call is trying Redis while the breaker is open: the others do not."""

    def may_try(self) -> bool:
        """Whether a call may ask Redis now."""
        if self.down_since is None:
            return True
        return not self.probing and self._clock() >= self._retry_at

    def failed(self, exc: BaseException) -> None:
        """A call to Redis failed: open, or stay open until the next retry."""
        REDIS_ERRORS.inc()
        now = self._clock()
        self._retry_at = now + self._retry_seconds
        if self.down_since is None:
            self.down_since = now
            REDIS_BREAKER_OPEN.set(1)
            _LOG.warning(
                "rate_limiter_redis_down", error=type(exc).__name__, failure_mode=self._failure_mode.value
            )

    def close(self) -> None:
        """A call to Redis worked while the breaker was open: calls go to Redis again."""
        if self.down_since is not None:
            _LOG.info("rate_limiter_redis_back", down_seconds=round(self._clock() - self.down_since, 3))
            self.down_since = None
            REDIS_BREAKER_OPEN.set(0)


class _LockReleases:
    """The duplicate-call locks of answered calls, deleted in one ``DEL`` a turn of the event loop.

    See `RateLimiter.release`. A Cluster client splits the keys by slot itself.
    """

    def __init__(
        self,
        redis: redis.asyncio.Redis,
        pipeline: PipelinedRedis | None,
        timeout_seconds: float,
        breaker: _Breaker,
    ) -> None:
        self._redis, self._pipeline, self._timeout, self._breaker = redis, pipeline, timeout_seconds, breaker
        self._unreleased: list[str] = []
        self._deletes: set[asyncio.Task[None]] = set()
        self._closed = False

    def add(self, lock: str) -> None:
        """Delete ``lock`` with the others released in this turn of the event loop, in the next."""
        if not self._unreleased:
            # In a context of its own: the batch belongs to no call in particular.
            asyncio.get_running_loop().call_soon(self._release_batch, context=contextvars.Context())
        self._unreleased.append(lock)

    async def close(self) -> None:
        """Wait for the deletes under way (at most the Redis timeout); delete nothing after."""
        self._closed = True
        if self._deletes:
            await asyncio.wait(set(self._deletes), timeout=self._timeout)

    def _release_batch(self) -> None:
        locks, self._unreleased = self._unreleased, []
        if self._closed or not self._breaker.may_try():
            return
        task = asyncio.create_task(self._delete(locks), name="lock-release")
        self._deletes.add(task)
        task.add_done_callback(self._deletes.discard)

    async def _delete(self, locks: list[str]) -> None:
        try:
            if self._pipeline is not None:
                await self._pipeline.execute("DEL", *locks)
            else:
                async with asyncio.timeout(self._timeout):
                    await self._redis.delete(*locks)
        except (RedisError, OSError, TimeoutError) as exc:
            _LOG.debug("lock_release_failed", error=type(exc).__name__)


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
        self._script = RateScript(self._pipeline or cast(ScriptCalls, redis))
        self._settings = settings
        self._clock = clock
        self._breaker = _Breaker(clock, settings.redis_retry_seconds, settings.redis_failure_mode)
        self._local = _LocalGcra(clock)
        self._revocations = RevocationMirror(
            redis,
            timeout_seconds=settings.redis_timeout_seconds * 4,
            refresh_seconds=settings.revocation_refresh_seconds,
            retry_seconds=settings.redis_retry_seconds,
            clock=clock,
        )
        self._closed = False
        # Calls beyond the connection pool wait here, outside the Redis timeout.
        self._connections = asyncio.Semaphore(settings.redis_max_connections)
        self._locks = _LockReleases(redis, self._pipeline, settings.redis_timeout_seconds, self._breaker)

    @property
    def degrade(self) -> bool:
        """Whether the limiter degrades to local limits when Redis is unreachable."""
        return self._settings.redis_failure_mode is RedisFailureMode.DEGRADE

    @property
    def redis_down(self) -> bool:
        """Whether the last attempt to reach Redis failed."""
        return self._breaker.down_since is not None

    @property
    def revocation_snapshot_age(self) -> float | None:
        """Seconds since the local copy of the revocation list was refreshed; None if never."""
        return self._revocations.age

    async def start(self) -> None:
        """In degrade mode, follow the revocation list from start-up, off the request path."""
        if self.degrade and not self._closed:
            self._revocations.start()

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

        One EVALSHA on the request path (plus SCRIPT LOAD on first use and after a script cache flush).

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
            The decision; the caller sends its ``metadata`` back, and raises its ``refusal()`` if refused.

        Raises:
            ApiError: UNAVAILABLE (00503) when the limiter cannot decide: Redis is
                unreachable in fail-closed mode, or for too long in degrade mode.
        """
        rate = rate_per_second if rate_per_second > 0 else self._settings.rate_limit_per_second
        if self._breaker.may_try():
            if self._connections.locked():
                await self._wait_for_connection()
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

    async def _wait_for_connection(self) -> None:
        """Queue for a connection to Redis, within the default deadline: a full pool is no outage.

        Raises:
            ApiError: UNAVAILABLE (00503), none came free in time.
        """
        try:
            async with asyncio.timeout(self._settings.default_deadline_seconds):
                await self._connections.acquire()
        except TimeoutError:
            DECISIONS.labels("none", "unavailable").inc()
            raise store_unavailable() from None

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
        breaker = self._breaker
        if not breaker.may_try():  # it opened while this call waited
            return None
        probe = breaker.down_since is not None
        if probe:
            breaker.probing = True
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
            breaker.failed(exc)
            return None
        finally:
            if probe:
                breaker.probing = False
        _REDIS_OK.observe(time.perf_counter() - started)
        if breaker.down_since is not None:  # Redis is back: the local buckets' state is stale by now
            breaker.close()
            self._local.clear()
        _REDIS_DECISIONS[_result(decision)].inc()
        return decision

    async def close(self) -> None:
        """Stop the background refresh of the revocation list, close the pipelined connection.

        The Redis client stays open: its owner closes it.
        """
        self._closed = True
        await self._locks.close()  # the locks of the last answers, before the connection goes
        if self._pipeline is not None:
            await self._pipeline.aclose()
        await self._revocations.close()

    # -- Redis ------------------------------------------------------------------------------------

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
        if not self._breaker.may_try():
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
        run = self._script.run(
            token_id,
            key,
            rate=rate,
            burst=burst,
            count=count,
            per_minute=per_minute,
            session=session,
            session_rate=session_rate,
            session_burst=session_burst,
            lock=lock,
            lock_ms=lock_ms,
            delegation=delegation,
        )
        if self._pipeline is not None:  # it times its replies itself, the loop's busy time aside
            reply = await run
        else:
            async with asyncio.timeout(self._settings.redis_timeout_seconds):
                reply = await run
        return RateDecision.of_script(
            reply, token_id, rate, key, burst=burst, per_minute=per_minute, session_burst=session_burst
        )

    def release(self, lock: str) -> None:
        """Delete the duplicate-call lock an admitted call took, once its answer is on its way.

        The locks released in one turn of the event loop go in one ``DEL``, sent in the next turn
        (right after the answers) without the calls waiting for it; a lock that cannot be deleted
        (Redis away) expires with its call's deadline. Sending it later, with the batched journal
        events, would refuse for that long an identical call sent as soon as the answer came.
        """
        self._locks.add(lock)

    # -- without Redis ------------------------------------------------------------------------------

    def _decide_without_redis(self, token_id: str, rate: int) -> RateDecision:
        if not self.degrade:
            DECISIONS.labels("none", "unavailable").inc()
            raise store_unavailable()
        down_for = self._clock() - (self._breaker.down_since or self._clock())
        revoked = self._revocations.revoked
        if down_for > self._settings.degraded_max_seconds or revoked is None:
            # Past the bound, or never saw the revocation list: a revoked token must not get through.
            DECISIONS.labels("local", "unavailable").inc()
            raise store_unavailable()
        if token_id in revoked:
            DECISIONS.labels("local", "revoked").inc()
            return RateDecision(False, True, 0, 0, 0.0, 0.0, token_id, rate)
        # Every worker of every replica limits on its own: each takes its share.
        replicas = self._settings.gateway_replicas * self._settings.gateway_workers
        burst = max(1, math.ceil(self.burst_for(rate) / replicas))
        decision = self._local.decide(token_id, rate / replicas, burst, rate)
        DECISIONS.labels("local", _result(decision)).inc()
        return decision


def _result(decision: RateDecision) -> str:
    if decision.revoked:
        return "revoked"
    if decision.duplicate:
        return "duplicate"
    return "allowed" if decision.allowed else "limited"
