"""The REST front's HTTP server: uvicorn, in the gateway's process and event loop.

uvicorn runs an ASGI application on the running asyncio loop (uvloop in the
gateway) with httptools' HTTP/1.1 parser, so the front shares the gRPC server's
loop, call path, Redis and provider channels: no second process, no thread, no
copy of any state. It is started and stopped by the gateway's server (the
process's signals stay the gateway's: uvicorn's own handlers are never installed).
Every connection is bounded in size, time and number (`gateway.rest.protocol`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from gateway.rest.protocol import FrontLimits, bounded_protocol
from runtime.server import bind_socket


class RestServer:
    """Serves an ASGI application over HTTP/1.1 (HTTPS with a certificate) on one port.

    Args:
        app: The application.
        limits: The bounds of every connection.
        host: The address to bind; empty for every interface, IPv4 and IPv6.
        port: The port; 0 picks a free one (`port` tells which once started).
        tls: The PEM certificate for HTTPS and its key; None (or no certificate) serves plain HTTP.
        reuse_port: Bind with ``SO_REUSEPORT``, shared with the other workers of one supervisor
            (`gateway.workers`); never otherwise.
    """

    def __init__(
        self,
        app: ASGIApp,
        limits: FrontLimits,
        *,
        host: str,
        port: int,
        tls: tuple[Path | None, Path | None] | None = None,
        reuse_port: bool = False,
    ) -> None:
        cert_file, key_file = tls or (None, None)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            http=bounded_protocol(limits),
            lifespan="off",
            # The gateway logs every call itself, without personal data; uvicorn's access log
            # would write query strings, which hold identities.
            access_log=False,
            log_config=None,
            server_header=False,
            # The caller's address is the connection's; gateway.client_address decides which
            # forwarded address to believe (uvicorn would trust 127.0.0.1's X-Forwarded-For).
            proxy_headers=False,
            ssl_certfile=str(cert_file) if cert_file else None,
            ssl_keyfile=str(key_file) if key_file else None,
        )
        self._server = uvicorn.Server(config)
        self._reuse_port = reuse_port
        self._ticks: asyncio.Task[None] | None = None
        self.port = 0

    async def start(self) -> None:
        """Bind the port and serve."""
        config = self._server.config
        config.load()
        self._server.lifespan = config.lifespan_class(config)
        shared = None
        if self._reuse_port:
            shared = [bind_socket(config.host, config.port, reuse_port=True)]
        await self._server.startup(sockets=shared)
        # Port 0 on every interface binds one socket per address family, each on a port of its
        # own: the IPv4 one is the port loopback callers reach.
        sockets = [sock for server in self._server.servers for sock in server.sockets]
        ipv4 = [sock for sock in sockets if sock.family == socket.AF_INET]
        self.port = int((ipv4 or sockets)[0].getsockname()[1])
        # uvicorn's tick: the Date header and the check of should_exit.
        self._ticks = asyncio.create_task(self._server.main_loop())

    async def stop(self, grace: float) -> None:
        """Stop accepting, let the calls in flight finish within ``grace`` seconds, then close."""
        if self._ticks is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._ticks
        self._server.config.timeout_graceful_shutdown = max(1, round(grace))
        await self._server.shutdown()
        self._ticks = None
