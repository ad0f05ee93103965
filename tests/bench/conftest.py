"""A real cnaf service on a loopback port, for the benchmark's own tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.cnaf.app import CNAF
from services.cnaf.settings import CnafSettings


@pytest.fixture(scope="module")
async def cnaf_address() -> AsyncIterator[str]:
    """The address of a cnaf service started for the module on port 0."""
    server = CNAF.server(CnafSettings(grpc_host="127.0.0.1", grpc_port=0))
    await server.start()
    try:
        yield f"127.0.0.1:{server.port}"
    finally:
        await server.stop(0)
