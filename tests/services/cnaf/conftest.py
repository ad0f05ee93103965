"""A real cnaf service on a loopback port, on the sandbox backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from apiparticulier.cnaf.v1 import cnaf_pb2_grpc
from services.cnaf.app import CNAF
from services.cnaf.settings import CnafSettings
from tests.conftest import running


@pytest.fixture(scope="module")
async def cnaf_channel() -> AsyncIterator[grpc.aio.Channel]:
    """A channel to a cnaf service started for the module."""
    settings = CnafSettings(grpc_host="127.0.0.1", grpc_port=0, metrics_port=0)
    async with running(CNAF.server(settings)) as channel:
        yield channel


@pytest.fixture
def cnaf(cnaf_channel: grpc.aio.Channel) -> cnaf_pb2_grpc.CnafServiceAsyncStub:
    """A stub of the cnaf service."""
    return cnaf_pb2_grpc.CnafServiceStub(cnaf_channel)
