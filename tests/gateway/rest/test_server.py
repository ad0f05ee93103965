"""The REST server: on every interface and port 0, the port it reports is the one loopback callers reach."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from gateway.rest.protocol import FrontLimits
from gateway.rest.server import RestServer
from gateway.settings import GatewaySettings

LIMITS = FrontLimits.of(GatewaySettings())


async def _hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


async def test_port_zero_on_every_interface_reports_the_ipv4_port() -> None:
    """Port 0 on IPv4 and IPv6 gives each family a port of its own; 127.0.0.1 reaches the one reported."""
    server = RestServer(Starlette(routes=[Route("/", _hello)]), LIMITS, host="", port=0)
    await server.start()
    try:
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"http://127.0.0.1:{server.port}/")
        assert (answer.status_code, answer.text) == (200, "hello")
    finally:
        await server.stop(0)
