"""A real france_travail service on a loopback port, on the sandbox backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from apiparticulier.france_travail.v1 import france_travail_pb2_grpc
from services.france_travail.app import FRANCE_TRAVAIL
from services.france_travail.settings import FranceTravailSettings
from tests.conftest import running


@pytest.fixture(scope="module")
async def france_travail_channel() -> AsyncIterator[grpc.aio.Channel]:
    """A channel to a france_travail service started for the module."""
    settings = FranceTravailSettings(grpc_host="127.0.0.1", grpc_port=0, metrics_port=0)
    async with running(FRANCE_TRAVAIL.server(settings)) as channel:
        yield channel


@pytest.fixture
def france_travail(
    france_travail_channel: grpc.aio.Channel,
) -> france_travail_pb2_grpc.FranceTravailServiceAsyncStub:
    """A stub of the france_travail service."""
    return france_travail_pb2_grpc.FranceTravailServiceStub(france_travail_channel)
