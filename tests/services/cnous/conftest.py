"""A real cnous service on a loopback port, on the sandbox backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from apiparticulier.cnous.v1 import cnous_pb2_grpc
from services.cnous.app import CNOUS
from services.cnous.settings import CnousSettings
from tests.conftest import running


@pytest.fixture(scope="module")
async def cnous_channel() -> AsyncIterator[grpc.aio.Channel]:
    """A channel to a cnous service started for the module."""
    settings = CnousSettings(grpc_host="127.0.0.1", grpc_port=0, metrics_port=0)
    async with running(CNOUS.server(settings)) as channel:
        yield channel


@pytest.fixture
def cnous(cnous_channel: grpc.aio.Channel) -> cnous_pb2_grpc.CnousServiceAsyncStub:
    """A stub of the cnous service."""
    return cnous_pb2_grpc.CnousServiceStub(cnous_channel)
