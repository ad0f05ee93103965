"""A real c2s service on a loopback port, on the sandbox backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from apiparticulier.c2s.v1 import c2s_pb2_grpc
from services.c2s.app import C2S
from services.c2s.settings import C2sSettings
from tests.conftest import running


@pytest.fixture(scope="module")
async def c2s_channel() -> AsyncIterator[grpc.aio.Channel]:
    """A channel to a c2s service started for the module."""
    settings = C2sSettings(grpc_host="127.0.0.1", grpc_port=0, metrics_port=0)
    async with running(C2S.server(settings)) as channel:
        yield channel


@pytest.fixture
def c2s(c2s_channel: grpc.aio.Channel) -> c2s_pb2_grpc.C2sServiceAsyncStub:
    """A stub of the c2s service."""
    return c2s_pb2_grpc.C2sServiceStub(c2s_channel)
