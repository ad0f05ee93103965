"""What the provider services' tests share: a service on its sandbox, a fake provider, upstream settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import grpc
import pytest

from services.common.app import ProviderAssembly
from services.common.settings import ProviderSettings
from tests.conftest import running
from tests.fake_provider import FakeProvider, json_answer

_Stub = TypeVar("_Stub")
_Settings = TypeVar("_Settings", bound=ProviderSettings)


def sandbox_stub_fixture(
    assembly: ProviderAssembly[Any, Any, Any], stub: Callable[[grpc.aio.Channel], _Stub]
) -> Any:
    """A fixture named after the provider: a stub of its service, on its sandbox, started once per module."""

    @pytest.fixture(scope="module", name=assembly.provider.name)
    async def sandbox_service() -> AsyncIterator[_Stub]:
        settings = assembly.settings(grpc_host="127.0.0.1", grpc_port=0, metrics_port=0)
        async with running(assembly.server(settings)) as channel:
            yield stub(channel)

    return sandbox_service


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    """A fake provider API on loopback whose token endpoint, ``/token``, gives the access token T1."""
    with FakeProvider() as provider:
        provider.script(
            "/token", json_answer({"access_token": "T1", "token_type": "Bearer", "expires_in": 600})
        )
        yield provider


def upstream_settings(settings_type: type[_Settings], url: str, **fields: Any) -> _Settings:
    """A provider's settings on the upstream backend, pointing at the fake on ``url``.

    Args:
        settings_type: The provider's settings class.
        url: The fake's base URL; its token endpoint is ``/token`` there.
        fields: The provider's credentials and anything else to set or override.
    """
    return settings_type(
        **{
            "backend": "upstream",
            "upstream_base_url": url,
            "upstream_token_url": f"{url}/token",
            "upstream_timeout_seconds": 2.0,
            **fields,
        }
    )
