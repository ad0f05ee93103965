"""Fixtures shared by the whole suite: a real Redis and real gRPC servers on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import grpc
import pytest

from devstack.redis import RedisProcess
from runtime.server import GrpcServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisProcess]:
    """A real redis-server for the session, on a free loopback port."""
    server = RedisProcess()
    server.start()
    yield server
    server.close()


@asynccontextmanager
async def running(server: GrpcServer) -> AsyncIterator[grpc.aio.Channel]:
    """Start a server (bound to port 0 by its settings) and yield a channel to it."""
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield channel
    finally:
        await channel.close(grace=None)
        await server.stop(0)
