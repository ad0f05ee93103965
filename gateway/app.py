"""Assembly of the gateway: keys, Redis, limiter, journal, usage, channels, proxy and its own API."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from contract.catalog import ApiCatalog
from contract.routes import build_routes
from gateway.api import GatewayApi
from gateway.auth import KeyStore, TokenVerifier
from gateway.availability import AvailabilityTracker
from gateway.call_path import CallPath
from gateway.channels import ProviderChannels
from gateway.france_connect import build_france_connect
from gateway.france_connect_clients import FranceConnectClients
from gateway.journal import Journal
from gateway.metrics import report_availability
from gateway.proxy import provider_services
from gateway.ratelimit import RateLimiter
from gateway.redis_client import close as close_redis
from gateway.redis_client import connect as connect_redis
from gateway.settings import GatewaySettings
from gateway.usage import UsageRecorder
from runtime.server import GrpcServer, ServiceDefinition, ShutdownHook


class GatewayServer(GrpcServer):
    """The gateway's server: starts its usage recorder and availability tracker with the server."""

    def __init__(
        self,
        settings: GatewaySettings,
        services: Sequence[ServiceDefinition],
        *,
        usage: UsageRecorder,
        on_shutdown: Sequence[ShutdownHook],
        availability: AvailabilityTracker | None = None,
    ) -> None:
        """Serve ``services``; usage and availability start with it, ``on_shutdown`` runs after the drain."""
        super().__init__(settings, services, on_shutdown=on_shutdown)
        self._usage = usage
        self._availability = availability

    async def start(self) -> None:
        """Start the usage recorder's flushing, then serve."""
        await self._usage.start()
        await super().start()
        if self._availability is not None:
            await self._availability.start()


def build_server(settings: GatewaySettings, extra_services: Sequence[ServiceDefinition] = ()) -> GrpcServer:
    """The gateway's server, ready to start.

    Args:
        settings: The gateway's settings.
        extra_services: Services served beside the providers' and the gateway's own API.

    Raises:
        ValueError: the settings cannot run a gateway (no journal key, no
            verification keys, a contract field without masking rule, FranceConnect
            upstream without credentials).
    """
    hmac_key = settings.journal_hmac_key.get_secret_value()
    if not hmac_key:
        raise ValueError(
            "JOURNAL_HMAC_KEY is empty: the journal needs a secret key to hash subjects "
            "(the same on every replica); refusing to start"
        )
    routes = build_routes()
    keys = KeyStore.from_source(settings.keys_dir, settings.jwks_file, settings.keys_reload_min_seconds)
    verifier = TokenVerifier(
        keys,
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        leeway_seconds=settings.token_leeway_seconds,
        max_bytes=settings.token_max_bytes,
        cache_size=settings.token_cache_size,
    )
    redis_client = connect_redis(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
    )
    limiter = RateLimiter(redis_client, settings)
    journal = Journal(hmac_key.encode())
    usage = UsageRecorder(redis_client, settings.usage_flush_seconds)
    channels = ProviderChannels(settings, tuple(dict.fromkeys(route.provider for route in routes.routes)))
    catalog = ApiCatalog(routes)
    contract_scopes = {scope for route in routes.routes for scope in route.scopes | route.plan.scopes}
    france_connect = build_france_connect(settings, contract_scopes)
    availability = AvailabilityTracker(
        channels.pools,
        retry_seconds=settings.availability_retry_seconds,
        stale_seconds=settings.availability_stale_seconds,
    )
    # Published as gateway_provider_availability, read at each scrape.
    report_availability(lambda: ((s.provider, s.status.value) for s in availability.snapshot()))
    call_path = CallPath(
        routes,
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
    )
    api = GatewayApi(
        settings=settings, call_path=call_path, usage=usage, availability=availability, catalog=catalog
    )
    return GatewayServer(
        settings,
        [*provider_services(call_path), api.service_definition(), *extra_services],
        # Order matters: the limiter and usage still use Redis while they close; the
        # health watches use the channels.
        on_shutdown=[
            limiter.close,
            usage.close,
            availability.close,
            france_connect.close,
            channels.close,
            functools.partial(close_redis, redis_client),
        ],
        usage=usage,
        availability=availability,
    )
