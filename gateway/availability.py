"""Availability of the providers, what the real API's pings are made of (`gateway.pings`).

Two things are learnt about each provider service:

- its health: a background ``grpc.health.v1.Health/Watch`` on each of the
  gateway's channels to it. The stream says SERVING or not as soon as it
  changes; while it is open and SERVING the provider is known to be up right
  now. A stream that breaks (the provider stopped, the connection dropped)
  counts as not serving and is opened again every ``AVAILABILITY_RETRY_SECONDS``;
- the outcome of the calls the gateway sends it: UNAVAILABLE, DEADLINE_EXCEEDED
  or UNKNOWN (the provider, or its upstream, unreachable, too slow or unreadable)
  marks it bad until a call succeeds; any other answer, a refusal included,
  shows it answering.

A provider is ``ok`` when every watched channel is SERVING and no failed call is
pending a success, ``bad_gateway`` otherwise, and ``unknown`` when nothing was
learnt about it for ``AVAILABILITY_STALE_SECONDS`` (or ever). ``last_update`` is
the time of the last thing learnt, ``last_ok_status`` the last time it was seen
answering.

Each call outcome is also counted by API, in 10-second buckets, for the error ratio
of the pings that watch an API's calls (`error_ratio`); the counts not yet shared with
the other gateways (`drain_counts`, `gateway.ratios`) wait beside them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

import grpc
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc

_LOG = structlog.get_logger(__name__)

FAILURES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNKNOWN}
)
"""Call outcomes that mark a provider bad until a call succeeds."""


class Availability(Enum):
    """What the pings say of a provider."""

    OK = "ok"
    BAD_GATEWAY = "bad_gateway"
    MAINTENANCE = "maintenance"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class ProviderState:
    """The availability of one provider at one instant."""

    provider: str
    status: Availability
    last_update: float | None
    """Epoch seconds of the last thing learnt; None if nothing ever was."""
    last_ok: float | None
    """Epoch seconds of the last time it was seen answering; None if never."""


@dataclass(slots=True)
class _Known:
    serving: dict[int, bool | None] = field(default_factory=dict)
    """Per watched channel: SERVING (True), not (False), or not known yet (None)."""
    streaming: set[int] = field(default_factory=set)
    """Channels whose Watch stream is open and SERVING: the provider is up as of now."""
    failed_call: bool = False
    last_update: float | None = None
    last_ok: float | None = None


BUCKET_SECONDS = 10.0
"""The span of one bucket of call outcomes."""
_KEPT_SECONDS = 3600.0
"""How far back call outcomes are counted by API: the longest ratio window asked."""


@dataclass(slots=True)
class _Bucket:
    start: float
    calls: int = 0
    failures: int = 0


class AvailabilityTracker:
    """Follows the availability of every provider, from health Watch streams and call outcomes.

    Args:
        channels: The gateway's channels to each provider, by provider name.
        retry_seconds: Time before a broken Watch stream is opened again.
        stale_seconds: Time without news after which a provider is unknown.
        clock: Wall clock in epoch seconds.
    """

    def __init__(
        self,
        channels: Mapping[str, Sequence[grpc.aio.Channel]],
        *,
        retry_seconds: float,
        stale_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._channels = {provider: tuple(pool) for provider, pool in channels.items()}
        self._retry = retry_seconds
        self._stale = stale_seconds
        self._clock = clock
        self._known = {
            provider: _Known(serving=dict.fromkeys(range(len(pool))))
            for provider, pool in self._channels.items()
        }
        self._tasks: list[asyncio.Task[None]] = []
        self._outcomes: dict[str, collections.deque[_Bucket]] = {}
        self._unshared: dict[tuple[str, int], list[int]] | None = None
        """Counts since the last `drain_counts`, by API and bucket start; None until the first drain."""

    async def start(self) -> None:
        """Open one Watch per provider channel, in the background."""
        if self._tasks:
            return
        for provider, pool in self._channels.items():
            for index, channel in enumerate(pool):
                self._tasks.append(
                    asyncio.create_task(
                        self._watch(provider, index, channel), name=f"health-watch-{provider}"
                    )
                )

    async def close(self) -> None:
        """Stop watching."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def observe(self, provider: str, status: grpc.StatusCode, api: str = "") -> None:
        """Learn from the outcome of one call to a provider.

        Args:
            provider: The provider service called.
            status: The status of its answer (OK, its own refusal, or the transport's failure).
            api: The API called (its ``api_route.api`` label), counted for `error_ratio`.
        """
        known = self._known.get(provider)
        if known is None:
            return
        now = self._clock()
        if api:
            self._count(api, now, failed=status in FAILURES)
        known.last_update = now
        if status in FAILURES:
            known.failed_call = True
            return
        known.failed_call = False
        known.last_ok = now

    def _count(self, api: str, now: float, *, failed: bool) -> None:
        buckets = self._outcomes.setdefault(api, collections.deque())
        start = now - now % BUCKET_SECONDS
        if not buckets or buckets[-1].start != start:
            buckets.append(_Bucket(start))
            while buckets[0].start < now - _KEPT_SECONDS:
                buckets.popleft()
        buckets[-1].calls += 1
        buckets[-1].failures += failed
        if self._unshared is not None:
            unshared = self._unshared.setdefault((api, int(start)), [0, 0])
            unshared[0] += 1
            unshared[1] += failed

    def drain_counts(self) -> dict[tuple[str, int], tuple[int, int]]:
        """The calls and failures counted since the last drain, by API and 10-s bucket start (epoch s).

        Counting for a drain starts with the first one, so that a tracker nobody drains keeps nothing more.
        """
        drained, self._unshared = self._unshared or {}, {}
        return {key: (calls, failures) for key, (calls, failures) in drained.items()}

    def error_ratio(self, api: str, window_seconds: float) -> float | None:
        """The share of the API's calls over the last ``window_seconds`` that failed; None without calls.

        A failure is a call that answered UNAVAILABLE, DEADLINE_EXCEEDED or UNKNOWN, the HTTP
        502, 503 and 504 of the real API's ratio check. Counted by 10-second buckets, so the
        window is as long as asked to within 10 seconds; at most an hour is kept.
        """
        since = self._clock() - window_seconds
        calls = failures = 0
        for bucket in self._outcomes.get(api, ()):
            if bucket.start + BUCKET_SECONDS > since:
                calls += bucket.calls
                failures += bucket.failures
        return failures / calls if calls else None

    def snapshot(self) -> list[ProviderState]:
        """The availability of every provider, in the order of the channels given."""
        now = self._clock()
        states = []
        for provider, known in self._known.items():
            last_update, last_ok = known.last_update, known.last_ok
            if known.streaming:
                # An open SERVING stream would have said otherwise: the provider is up as of now.
                last_update = now
                if all(known.serving.values()) and not known.failed_call:
                    last_ok = now
            if last_update is None or now - last_update > self._stale:
                status = Availability.UNKNOWN
            elif known.failed_call or not all(known.serving.values()):
                status = Availability.BAD_GATEWAY
            else:
                status = Availability.OK
            states.append(ProviderState(provider, status, last_update, last_ok))
        return states

    def _health(self, provider: str, index: int, serving: bool, *, streaming: bool) -> None:
        known = self._known[provider]
        now = self._clock()
        known.serving[index] = serving
        if streaming and serving:
            known.streaming.add(index)
        else:
            known.streaming.discard(index)
        known.last_update = now
        if serving and all(known.serving.values()) and not known.failed_call:
            known.last_ok = now

    async def _watch(self, provider: str, index: int, channel: grpc.aio.Channel) -> None:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                async for answer in stub.Watch(health_pb2.HealthCheckRequest(service="")):
                    serving = answer.status == health_pb2.HealthCheckResponse.SERVING
                    self._health(provider, index, serving, streaming=True)
            except grpc.aio.AioRpcError as error:
                _LOG.debug("health_watch_broken", provider=provider, status=error.code().name)
            # The stream ended or broke: the provider is not known to serve any more.
            self._health(provider, index, False, streaming=False)
            await asyncio.sleep(self._retry)
