"""Assembly of the gateway: keys, Redis, limiter, journal, usage, channels, proxy and its own API."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio
import structlog

from contract.catalog import ApiCatalog
from contract.routes import RouteTable, build_routes, contract_scopes
from gateway.auth import KeyStore, TokenVerifier
from gateway.availability import BUCKET_SECONDS, AvailabilityTracker
from gateway.availability_history import AvailabilityHistory
from gateway.call_lock import CallLocks
from gateway.call_path import CallPath
from gateway.channels import ProviderChannels
from gateway.client_address import ClientAddresses
from gateway.france_connect.clients import FranceConnectClients
from gateway.france_connect.resolver import FranceConnect, build_france_connect
from gateway.grpc.api import GatewayApi
from gateway.grpc.proxy import provider_services
from gateway.journal import Journal
from gateway.journal.access_history import AccessHistory
from gateway.journal.signing import Signer
from gateway.journal.witness import FileWitness
from gateway.journal.writer import JournalWriter, WriterSettings
from gateway.metrics import report_availability
from gateway.pings import RATIO_WINDOW_SECONDS, PingBoard
from gateway.ratelimit import RateLimiter
from gateway.ratios import SharedErrorRatios
from gateway.redis.client import close as close_redis
from gateway.redis.client import connect as connect_redis
from gateway.registry.snapshot import RegistrySnapshot
from gateway.response_cache import ResponseCache, cache_keys
from gateway.rest.app import RestFront
from gateway.rest.protocol import FrontLimits
from gateway.rest.server import RestServer
from gateway.serving import Serving
from gateway.settings import GatewaySettings
from gateway.usage import UsageRecorder
from runtime.logs import configure_logging
from runtime.server import GrpcServer, ServiceDefinition, ShutdownHook, run_process, waiting_tasks

_LOG = structlog.get_logger(__name__)
_REST_STOP_MARGIN_SECONDS = 10.0
"""How long past its grace the REST front's stop may take before the gRPC side stops without it."""
_REGISTRY_FIRST_LOAD_SECONDS = 10.0
"""Longest a starting gateway waits for its first load of the registry; it then serves and keeps trying."""


@dataclass(frozen=True, slots=True)
class Component:
    """A part of the gateway process: started before it serves, stopped after it has drained."""

    stop: ShutdownHook
    start: ShutdownHook | None = None
    """None: nothing to start (a client that connects on first use)."""


class GatewayServer(GrpcServer):
    """The gateway's server: starts its components and its REST front with it, stops them after it."""

    def __init__(
        self,
        settings: GatewaySettings,
        services: Sequence[ServiceDefinition],
        *,
        components: Sequence[Component],
        rest: RestServer | None = None,
        reuse_port: bool = False,
    ) -> None:
        """Serve ``services``; ``components`` start in their order, and stop in reverse after the drain.

        ``rest``, the REST front, serves beside the gRPC port and drains with it.
        """
        stops = [component.stop for component in reversed(components)]
        super().__init__(settings, services, on_shutdown=stops, reuse_port=reuse_port)
        # A call refused while the gateway stops is refused by the call path, which journals it.
        self._boundary.refused_in_handlers = True
        self._components = tuple(components)
        self.rest = rest

    async def start(self) -> None:
        """Start the components in their order, then serve: the gRPC port, then the REST front."""
        for component in self._components:
            if component.start is not None:
                await component.start()
        await super().start()
        if self.rest is not None:
            await self.rest.start()
            _LOG.info("rest_front_started", port=self.rest.port)

    async def stop(self, grace: float | None = None, notice: float = 0.0) -> None:
        """Drain the REST front and the gRPC server together, then close the clients.

        Both keep serving for ``notice`` seconds after health turned NOT_SERVING.
        """
        grace = self._settings.shutdown_grace_seconds if grace is None else grace
        rest = self.rest
        if rest is None:
            await super().stop(grace, notice)
            return

        async def stop_rest() -> None:
            await asyncio.sleep(notice)
            try:
                async with asyncio.timeout(grace + _REST_STOP_MARGIN_SECONDS):
                    await rest.stop(grace)
            except TimeoutError:
                _LOG.error(
                    "rest_stop_overdue", seconds=grace + _REST_STOP_MARGIN_SECONDS, waiting=waiting_tasks()
                )

        await asyncio.gather(stop_rest(), super().stop(grace, notice))


def serve(
    settings: GatewaySettings,
    *,
    reuse_port: bool = False,
    beside: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> None:
    """Run one gateway process until SIGTERM or SIGINT; exit with a plain message on a configuration mistake.

    Args:
        settings: The gateway's settings.
        reuse_port: Share the ports with the other workers of one supervisor (`gateway.workers`).
        beside: A coroutine run on the gateway's event loop while it serves (a worker's heartbeat).
    """
    configure_logging(settings.log_level, settings.log_format)

    async def main() -> None:
        try:
            server = build_server(settings, reuse_port=reuse_port)
        except ValueError as error:
            sys.exit(f"gateway: {error}")
        task = asyncio.create_task(beside()) if beside is not None else None
        try:
            await server.run_until_signalled()
        finally:
            if task is not None:
                task.cancel()

    run_process(main)


def build_server(
    settings: GatewaySettings, extra_services: Sequence[ServiceDefinition] = (), *, reuse_port: bool = False
) -> GrpcServer:
    """The gateway's server, ready to start.

    Args:
        settings: The gateway's settings.
        extra_services: Services served beside the providers' and the gateway's own API.
        reuse_port: Bind the ports with ``SO_REUSEPORT``, shared with the other workers of one
            supervisor (`gateway.workers`); never otherwise.

    Raises:
        ValueError: the settings cannot run a gateway (no journal key, no
            verification keys, a contract field without masking rule, FranceConnect
            upstream without credentials, REST bounds too small for a token).
    """
    parts = build_parts(settings)
    api = GatewayApi(settings=settings, serving=parts.serving)
    return GatewayServer(
        settings,
        [*provider_services(parts.serving.call_path), api.service_definition(), *extra_services],
        components=lifecycle(parts),
        rest=build_rest(parts, reuse_port=reuse_port),
        reuse_port=reuse_port,
    )


@dataclass(frozen=True, slots=True)
class Parts:
    """What the gateway's servers and its components are made of (`build_parts`), each built once."""

    settings: GatewaySettings
    redis: redis.asyncio.Redis
    registry: RegistrySnapshot | None
    """None: tokens carry their own rights."""
    channels: ProviderChannels
    ratios: SharedErrorRatios
    history: AvailabilityHistory
    serving: Serving
    """What both fronts answer with."""


def build_parts(settings: GatewaySettings) -> Parts:
    """The gateway's parts, each built once, in the order they need each other.

    Raises:
        ValueError: as `build_server`.
    """
    hmac_key = journal_hmac_key(settings)
    routes = build_routes()
    # Before anything that opens a channel or a connection: a refusal leaves nothing to close.
    france_connect = build_france_connect(settings, contract_scopes())
    registry = build_registry(settings)
    verifier = build_verifier(settings, registry)
    redis_client = build_redis(settings)
    journal = build_journal(settings, hmac_key)
    usage = UsageRecorder(redis_client, settings.usage_flush_seconds)
    channels = ProviderChannels(settings, tuple(dict.fromkeys(route.provider for route in routes.routes)))
    catalog = ApiCatalog(routes)
    availability = build_availability(settings, channels)
    ratios, pings, history = build_pings(settings, redis_client, availability)
    call_path = build_call_path(
        settings,
        routes,
        redis_client,
        verifier=verifier,
        journal=journal,
        usage=usage,
        channels=channels,
        registry=registry,
        availability=availability,
        france_connect=france_connect,
    )
    access_history = AccessHistory(
        settings.journal_database_url.get_secret_value(),
        journal,
        catalog,
        settings.journal_timeout_seconds,
        registry,
    )
    return Parts(
        settings=settings,
        redis=redis_client,
        registry=registry,
        channels=channels,
        ratios=ratios,
        history=history,
        serving=Serving(call_path, usage, pings, catalog, access_history, history),
    )


def build_call_path(
    settings: GatewaySettings,
    routes: RouteTable,
    redis_client: redis.asyncio.Redis,
    *,
    verifier: TokenVerifier,
    journal: Journal,
    usage: UsageRecorder,
    channels: ProviderChannels,
    availability: AvailabilityTracker,
    registry: RegistrySnapshot | None,
    france_connect: FranceConnect,
) -> CallPath:
    """The call path: its limiter, DSS response cache, FranceConnect clients (mapped in ``registry``)."""
    return CallPath(
        routes=routes,
        default_deadline_seconds=settings.default_deadline_seconds,
        verifier=verifier,
        limiter=RateLimiter(redis_client, settings),
        journal=journal,
        usage=usage,
        channels=channels.pools,
        france_connect=france_connect,
        france_connect_clients=FranceConnectClients(
            redis_client, cache_seconds=settings.france_connect_link_cache_seconds, registry=registry
        ),
        availability=availability,
        addresses=ClientAddresses(settings.trusted_proxies, settings.trusted_proxy_header),
        locks=CallLocks(settings.journal_hmac_key.get_secret_value().encode())
        if settings.duplicate_call_lock
        else None,
        response_cache=ResponseCache(
            redis_client, cache_keys(settings.response_cache_keys.get_secret_value())
        ),
    )


def lifecycle(parts: Parts) -> list[Component]:
    """The gateway's components in the order they start; they stop in the reverse order, after the drain.

    The last calls' usage counts go to the usage recorder before it flushes; the limiter
    and usage still use Redis while they close; the health watches use the channels; the
    shared error ratios read the availability's counts, and the availability history the pings.
    """
    call_path, registry, first_load = parts.serving.call_path, parts.registry, _REGISTRY_FIRST_LOAD_SECONDS
    registered = (
        [] if registry is None else [Component(registry.close, functools.partial(registry.start, first_load))]
    )
    return [
        Component(functools.partial(close_redis, parts.redis)),
        Component(parts.channels.close),
        Component(call_path.france_connect.close),
        Component(call_path.availability.close, call_path.availability.start),
        Component(parts.ratios.close, parts.ratios.start),
        Component(parts.history.close, parts.history.start),
        *registered,
        Component(call_path.journal.close, call_path.journal.start),
        Component(parts.serving.usage.close, parts.serving.usage.start),
        Component(call_path.limiter.close, call_path.limiter.start),
        Component(call_path.close),
    ]


def build_pings(
    settings: GatewaySettings, redis_client: redis.asyncio.Redis, availability: AvailabilityTracker
) -> tuple[SharedErrorRatios, PingBoard, AvailabilityHistory]:
    """The real API's pings over ``availability``: the ratios all gateways share, the board, its history."""
    ratios = SharedErrorRatios(
        redis_client,
        availability.drain_counts,
        window_seconds=RATIO_WINDOW_SECONDS,
        bucket_seconds=BUCKET_SECONDS,
    )
    pings = PingBoard(availability, redis_client, ratios=ratios)
    return (
        ratios,
        pings,
        AvailabilityHistory(redis_client, pings.states, settings.availability_sample_seconds),
    )


def journal_hmac_key(settings: GatewaySettings) -> bytes:
    """The journal's key for hashing subjects (``JOURNAL_HMAC_KEY``).

    Raises:
        ValueError: it is empty.
    """
    hmac_key = settings.journal_hmac_key.get_secret_value()
    if not hmac_key:
        raise ValueError(
            "JOURNAL_HMAC_KEY is empty: the journal needs a secret key to hash subjects "
            "(the same on every replica); refusing to start"
        )
    return hmac_key.encode()


def build_verifier(settings: GatewaySettings, registry: RegistrySnapshot | None) -> TokenVerifier:
    """The token verifier, with the keys of ``KEYS_DIR`` or ``JWKS_FILE`` and the registry's rights.

    Raises:
        ValueError: no verification key.
    """
    keys = KeyStore.from_source(settings.keys_dir, settings.jwks_file, settings.keys_reload_min_seconds)
    return TokenVerifier(keys, settings, registry=registry, environment=settings.gateway_environment)


def build_redis(settings: GatewaySettings) -> redis.asyncio.Redis:
    """The Redis client of the limiter, usage and FranceConnect's habilitations (``REDIS_URL``)."""
    return connect_redis(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        pool_timeout=settings.default_deadline_seconds,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
    )


def build_availability(settings: GatewaySettings, channels: ProviderChannels) -> AvailabilityTracker:
    """The providers' availability, published as ``gateway_provider_availability`` at each scrape."""
    availability = AvailabilityTracker(
        channels.pools,
        retry_seconds=settings.availability_retry_seconds,
        stale_seconds=settings.availability_stale_seconds,
    )
    report_availability(lambda: ((s.provider, s.status.value) for s in availability.snapshot()))
    return availability


def build_rest(parts: Parts, *, reuse_port: bool) -> RestServer | None:
    """The REST front ``REST_PORT`` asks for, speaking TLS with the gRPC port's certificate; None: no port."""
    settings = parts.settings
    if settings.rest_port is None:
        return None
    front = RestFront(
        parts.serving,
        access_history_rate=settings.access_history_rate_per_second,
        public_url=settings.rest_public_url,
    )
    return RestServer(
        front.app,
        FrontLimits.of(settings),
        host=settings.rest_host,
        port=settings.rest_port,
        tls=(settings.tls_cert_file, settings.tls_key_file),
        reuse_port=reuse_port,
    )


def build_registry(settings: GatewaySettings) -> RegistrySnapshot | None:
    """The registry snapshot ``REGISTRY_DATABASE_URL`` asks for; None: tokens carry their own rights."""
    url = settings.registry_database_url.get_secret_value()
    if not url:
        return None
    return RegistrySnapshot(
        url,
        reload_seconds=settings.registry_reload_seconds,
        change_delay_seconds=settings.registry_change_delay_seconds,
        retry_seconds=settings.registry_retry_seconds,
        timeout_seconds=settings.journal_timeout_seconds,
    )


def build_journal(settings: GatewaySettings, hmac_key: bytes) -> Journal:
    """The journal ``JOURNAL_DATABASE_URL`` asks for: in PostgreSQL, or the log events alone.

    Raises:
        ValueError: a database without ``JOURNAL_SIGNING_KEY_FILE``, or an unreadable key.
    """
    url = settings.journal_database_url.get_secret_value()
    if not url:
        _LOG.warning("journal_database_off", reason="JOURNAL_DATABASE_URL is empty: log events only")
        return Journal(hmac_key)
    if settings.journal_signing_key_file is None:
        raise ValueError(
            "JOURNAL_DATABASE_URL needs JOURNAL_SIGNING_KEY_FILE, the key that signs the journal"
        )
    writer = JournalWriter(
        url,
        Signer.from_file(settings.journal_signing_key_file),
        WriterSettings(
            mode=settings.journal_failure_mode,
            spool_rows=settings.journal_spool_rows,
            batch_rows=settings.journal_batch_rows,
            flush_seconds=settings.journal_flush_seconds,
            checkpoint_seconds=settings.journal_checkpoint_seconds,
            timeout_seconds=settings.journal_timeout_seconds,
            retry_seconds=settings.journal_retry_seconds,
            retention_months=settings.journal_retention_months,
            wal_dir=settings.journal_wal_dir,
            wal_max_bytes=settings.journal_wal_max_bytes,
        ),
        witness=None if settings.journal_witness_file is None else FileWitness(settings.journal_witness_file),
    )
    return Journal(hmac_key, writer)
