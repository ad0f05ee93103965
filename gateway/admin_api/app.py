"""The admin API process: ``python -m gateway.admin_api``.

It migrates the registry's schema, then serves the admin API over gRPC on
``GRPC_PORT`` and, when ``ADMIN_REST_PORT`` is set, its REST front for the console;
both on ports of their own, which the gateway's public ports never serve. Settings:
`gateway.admin_api.settings.AdminSettings`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sys
from collections.abc import Sequence

import psycopg
import structlog

from gateway.admin import keys
from gateway.admin_api import grpc_api, rest_api
from gateway.admin_api.actions import AdminService
from gateway.admin_api.holders import HolderService
from gateway.admin_api.service import Operators, TokenSigner
from gateway.admin_api.settings import AdminSettings
from gateway.redis.client import close, connect
from gateway.registry import notices, schema
from gateway.rest.protocol import FrontLimits
from gateway.rest.server import RestServer
from gateway.settings import GatewaySettings
from runtime.logs import configure_logging
from runtime.server import GrpcServer, ServiceDefinition, ShutdownHook, run_process

_LOG = structlog.get_logger(__name__)


class AdminServer(GrpcServer):
    """The admin API's gRPC server, with its REST front beside it when configured."""

    def __init__(
        self,
        settings: AdminSettings,
        services: Sequence[ServiceDefinition],
        *,
        on_shutdown: Sequence[ShutdownHook],
        rest: RestServer | None,
        mailer: notices.Mailer | None = None,
    ) -> None:
        """Serve ``services``, and ``rest`` beside them; send the expiry notices through ``mailer``."""
        super().__init__(settings, services, on_shutdown=on_shutdown)
        self.rest = rest
        self._admin_settings = settings
        self._mailer = mailer
        self._notices: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Serve gRPC, then the REST front; then send the notices due, now and periodically."""
        await super().start()
        if self.rest is not None:
            await self.rest.start()
            _LOG.info("admin_rest_started", port=self.rest.port)
        if self._mailer is not None:
            self._notices = asyncio.create_task(self._send_notices(self._mailer), name="expiry-notices")

    async def _send_notices(self, mailer: notices.Mailer) -> None:
        url = self._admin_settings.registry_database_url.get_secret_value()
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                    await notices.send_due(conn, mailer)
            except (psycopg.Error, OSError) as error:
                _LOG.warning("notices_not_checked", error_type=type(error).__name__)
            await asyncio.sleep(self._admin_settings.notice_interval_seconds)

    async def stop(self, grace: float | None = None, notice: float = 0.0) -> None:
        """Stop the notices and the REST front, then drain the gRPC server."""
        if self._notices is not None:
            self._notices.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._notices
        if self.rest is not None:
            await self.rest.stop(self._settings.shutdown_grace_seconds if grace is None else grace)
        await super().stop(grace, notice)


REST_MAX_BODY_BYTES = 65_536
"""Longest body the admin REST front takes: a habilitation at every bound of `gateway.registry.model`
(every scope, 100 networks, 20 contacts, its texts with every character escaped) is under 40 KiB."""


def _front_limits() -> FrontLimits:
    """The gateway's REST front bounds at their defaults (``REST_*``), with room for a JSON body."""
    defaults = FrontLimits.of(GatewaySettings.model_construct())
    return dataclasses.replace(defaults, body_bytes=REST_MAX_BODY_BYTES)


async def build_server(settings: AdminSettings) -> AdminServer:
    """The admin API's server, its schema migrated.

    Raises:
        ValueError: a required setting is missing or a file it names is unusable (the message says which).
        psycopg.OperationalError: the registry's database cannot be reached.
    """
    database_url = settings.registry_database_url.get_secret_value()
    if not database_url:
        raise ValueError("REGISTRY_DATABASE_URL is required: the registry's PostgreSQL")
    if settings.admin_operators_file is None:
        raise ValueError("ADMIN_OPERATORS_FILE is required: who may use the admin API")
    if settings.keys_dir is None or not settings.token_signing_kid:
        raise ValueError("KEYS_DIR and TOKEN_SIGNING_KID are required: the key that signs new tokens")
    try:
        operators = Operators.from_file(settings.admin_operators_file)
        key = keys.load_private(settings.keys_dir, keys.check_kid(settings.token_signing_kid))
    except (OSError, ValueError, keys.KeyFileError) as error:
        raise ValueError(str(error)) from None
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        applied = await schema.migrate(conn)
    _LOG.info("registry_migrated", applied=applied)
    redis_client = connect(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    mailer = (
        notices.Mailer(
            settings.smtp_host, settings.smtp_port, settings.notice_from, starttls=settings.smtp_starttls
        )
        if settings.smtp_host
        else None
    )
    service = AdminService(
        database_url,
        TokenSigner(key, settings.token_signing_kid, settings.token_issuer, settings.token_audience),
        redis_client,
        timeout_seconds=settings.registry_timeout_seconds,
        mailer=mailer,
    )

    async def close_clients() -> None:
        await service.close()
        await close(redis_client)

    rest = None
    if settings.admin_rest_port is not None:
        rest = RestServer(
            rest_api.build_app(service, operators, HolderService(service, redis_client)),
            _front_limits(),
            host=settings.admin_rest_host,
            port=settings.admin_rest_port,
        )
    return AdminServer(
        settings,
        [grpc_api.definition(grpc_api.AdminServicer(service, operators))],
        on_shutdown=[close_clients],
        rest=rest,
        mailer=mailer,
    )


def serve(settings: AdminSettings) -> None:
    """Run the admin API until SIGTERM or SIGINT; exit with a plain message on a configuration mistake."""
    configure_logging(settings.log_level, settings.log_format)

    async def main() -> None:
        try:
            server = await build_server(settings)
        except ValueError as error:
            sys.exit(f"admin API: {error}")
        except psycopg.OperationalError as error:
            sys.exit(f"admin API: the registry's database cannot be reached ({type(error).__name__})")
        await server.run_until_signalled()

    run_process(main)
