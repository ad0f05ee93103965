"""A real men service on a loopback port, on the sandbox backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from apiparticulier.men.v1 import men_pb2_grpc
from services.men.app import MEN
from services.men.settings import MenSettings
from tests.conftest import running


@pytest.fixture(scope="module")
async def men_channel() -> AsyncIterator[grpc.aio.Channel]:
    """A channel to a men service started for the module."""
    settings = MenSettings(grpc_host="127.0.0.1", grpc_port=0, metrics_port=0)
    async with running(MEN.server(settings)) as channel:
        yield channel


@pytest.fixture
def men(men_channel: grpc.aio.Channel) -> men_pb2_grpc.MenServiceAsyncStub:
    """A stub of the men service."""
    return men_pb2_grpc.MenServiceStub(men_channel)
