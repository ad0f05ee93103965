"""Assembly of the gateway: keys, Redis, limiter, journal, usage, channels, proxy and its own API."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import structlog

from contract.catalog import ApiCatalog
from contract.routes import build_routes, contract_scopes
from gateway.auth import KeyStore, TokenVerifier
from gateway.availability import BUCKET_SECONDS, AvailabilityTracker
from gateway.call_path import CallPath
from gateway.channels import ProviderChannels
from gateway.france_connect.clients import FranceConnectClients
from gateway.france_connect.resolver import build_france_connect
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
from gateway.settings import GatewaySettings
from gateway.usage import UsageRecorder
from runtime.logs import configure_logging
from runtime.server import GrpcServer, ServiceDefinition, ShutdownHook, run_process

_LOG = structlog.get_logger(__name__)
_REGISTRY_FIRST_LOAD_SECONDS = 10.0
"""Longest a starting gateway waits for its first load of the registry; it then serves and keeps trying."""


class GatewayServer(GrpcServer):
    """The gateway's server: starts its usage recorder, availability tracker and REST front with it."""

    def __init__(
        self,
        settings: GatewaySettings,
        services: Sequence[ServiceDefinition],
        *,
        usage: UsageRecorder,
        on_shutdown: Sequence[ShutdownHook],
        availability: AvailabilityTracker | None = None,
        background: Sequence[Callable[[], Awaitable[None]]] = (),
        rest: RestServer | None = None,
        journal: Journal | None = None,
        registry: RegistrySnapshot | None = None,
        reuse_port: bool = False,
    ) -> None:
        """Serve ``services``; usage, journal, registry, availability start with it; then ``on_shutdown``.

        ``rest``, the REST front, serves beside the gRPC port and drains with it; ``background``
        starts the tasks that run beside the server (their ``on_shutdown`` stops them).
        """
        super().__init__(settings, services, on_shutdown=on_shutdown, reuse_port=reuse_port)
        # A call refused while the gateway stops is refused by the call path, which journals it.
        self._boundary.refused_in_handlers = True
        self._usage = usage
        self._availability = availability
        self._background = background
        self._journal = journal
        self._registry = registry
        self.rest = rest

    async def start(self) -> None:
        """Start the usage recorder's flushing and the journal's writer, then serve."""
        await self._usage.start()
        if self._journal is not None:
            await self._journal.start()
        if self._registry is not None:
            await self._registry.start(first_load_timeout=_REGISTRY_FIRST_LOAD_SECONDS)
        await super().start()
        if self._availability is not None:
            await self._availability.start()
        for start in self._background:
            await start()
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
            await rest.stop(grace)

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
    hmac_key = settings.journal_hmac_key.get_secret_value()
    if not hmac_key:
        raise ValueError(
            "JOURNAL_HMAC_KEY is empty: the journal needs a secret key to hash subjects "
            "(the same on every replica); refusing to start"
        )
    routes = build_routes()
    keys = KeyStore.from_source(settings.keys_dir, settings.jwks_file, settings.keys_reload_min_seconds)
    registry = build_registry(settings)
    verifier = TokenVerifier(
        keys,
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        leeway_seconds=settings.token_leeway_seconds,
        max_bytes=settings.token_max_bytes,
        cache_size=settings.token_cache_size,
        registry=registry,
        environment=settings.gateway_environment,
    )
    redis_client = connect_redis(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        pool_timeout=settings.default_deadline_seconds,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
    )
    limiter = RateLimiter(redis_client, settings)
    journal = build_journal(settings, hmac_key.encode())
    usage = UsageRecorder(redis_client, settings.usage_flush_seconds)
    channels = ProviderChannels(settings, tuple(dict.fromkeys(route.provider for route in routes.routes)))
    catalog = ApiCatalog(routes)
    france_connect = build_france_connect(settings, contract_scopes())
    availability = AvailabilityTracker(
        channels.pools,
        retry_seconds=settings.availability_retry_seconds,
        stale_seconds=settings.availability_stale_seconds,
    )
    ratios = SharedErrorRatios(
        redis_client,
        availability.drain_counts,
        window_seconds=RATIO_WINDOW_SECONDS,
        bucket_seconds=BUCKET_SECONDS,
    )
    pings = PingBoard(availability, redis_client, ratios=ratios)
    response_cache = ResponseCache(redis_client, cache_keys(settings.response_cache_keys.get_secret_value()))
    # Published as gateway_provider_availability, read at each scrape.
    report_availability(lambda: ((s.provider, s.status.value) for s in availability.snapshot()))
    call_path = CallPath(
        routes=routes,
        default_deadline_seconds=settings.default_deadline_seconds,
        verifier=verifier,
        limiter=limiter,
        journal=journal,
        usage=usage.count,
        channels=channels.pools,
        france_connect=france_connect,
        france_connect_clients=FranceConnectClients(
            redis_client, cache_seconds=settings.france_connect_link_cache_seconds
        ),
        availability=availability,
        response_cache=response_cache,
    )
    access_history = AccessHistory(
        settings.journal_database_url.get_secret_value(), journal, catalog, settings.journal_timeout_seconds
    )
    api = GatewayApi(
        settings=settings,
        call_path=call_path,
        usage=usage,
        pings=pings,
        catalog=catalog,
        access_history=access_history,
    )
    rest = None
    if settings.rest_port is not None:
        front = RestFront(
            call_path=call_path,
            pings=pings,
            usage=usage,
            access_history=access_history,
            access_history_rate=settings.access_history_rate_per_second,
            public_url=settings.rest_public_url,
        )
        # The REST front speaks TLS with the gRPC port's certificate.
        tls = (settings.tls_cert_file, settings.tls_key_file)
        rest = RestServer(
            front.app,
            FrontLimits.of(settings),
            host=settings.rest_host,
            port=settings.rest_port,
            tls=tls,
            reuse_port=reuse_port,
        )
    return GatewayServer(
        settings,
        [*provider_services(call_path), api.service_definition(), *extra_services],
        # Order matters: the last calls' usage counts go to the usage recorder before it
        # flushes; the limiter and usage still use Redis while they close; the health
        # watches use the channels.
        on_shutdown=[
            call_path.close,
            limiter.close,
            usage.close,
            journal.close,
            *([registry.close] if registry is not None else []),
            availability.close,
            ratios.close,
            france_connect.close,
            channels.close,
            functools.partial(close_redis, redis_client),
        ],
        usage=usage,
        availability=availability,
        background=[ratios.start],
        rest=rest,
        journal=journal,
        registry=registry,
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
        ),
        witness=None if settings.journal_witness_file is None else FileWitness(settings.journal_witness_file),
    )
    return Journal(hmac_key, writer)
