"""A real mesr service on a loopback port, on the sandbox backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from apiparticulier.mesr.v1 import mesr_pb2_grpc
from services.mesr.app import MESR
from services.mesr.settings import MesrSettings
from tests.conftest import running


@pytest.fixture(scope="module")
async def mesr_channel() -> AsyncIterator[grpc.aio.Channel]:
    """A channel to a mesr service started for the module."""
    settings = MesrSettings(grpc_host="127.0.0.1", grpc_port=0, metrics_port=0)
    async with running(MESR.server(settings)) as channel:
        yield channel


@pytest.fixture
def mesr(mesr_channel: grpc.aio.Channel) -> mesr_pb2_grpc.MesrServiceAsyncStub:
    """A stub of the mesr service."""
    return mesr_pb2_grpc.MesrServiceStub(mesr_channel)
