"""Withheld fields through a real gateway in front of every provider's sandbox.

For every scope that unlocks a response field, a token holding every other scope
of the method gets exactly the fields of that scope withheld: cleared, absent
from the rendered v3 JSON, named in ``withheld``, and everything else as a token
holding every scope gets it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message

from apiparticulier.cnaf.v1 import cnaf_pb2
from apiparticulier.common.v1 import options_pb2
from contract.routes import Route, build_routes, field_options
from contract.v3_json import DATA_FIELD, data_object, render, withheld_of
from devstack.redis import RedisProcess
from gateway.app import build_server
from gateway.france_connect.sandbox import SANDBOX_TOKENS
from runtime.providers import BY_NAME
from tests.conftest import running
from tests.gateway.conftest import gateway_settings
from tests.gateway.tokens import SIRET, SigningKey, TokenFactory
from tests.rich_status import rich_status
from tests.sandbox_cases import cases, method, sandbox_providers

ROUTES = build_routes()
_CASES = cases(ROUTES, dt.date.today())


@dataclass
class Gateway:
    """A gateway in front of every provider, and the key its tokens are signed with."""

    channel: grpc.aio.Channel
    key: SigningKey

    async def call(self, route: Route, request: Message, scopes: frozenset[str]) -> Any:
        """Call a provider method through the gateway with a token holding ``scopes``."""
        token = TokenFactory(self.key, scopes=sorted(scopes)).bearer()
        metadata = (("authorization", token), ("x-recipient", SIRET))
        return await method(self.channel, route)(request, metadata=metadata, timeout=5)


@pytest.fixture(scope="module")
async def gateway(
    redis_server: RedisProcess, keys_dir: tuple[Path, SigningKey, SigningKey]
) -> AsyncIterator[Gateway]:
    """A real gateway in front of every provider service on its sandbox backend."""
    directory, key, _ = keys_dir
    async with sandbox_providers() as addresses:
        settings = gateway_settings(
            directory,
            redis_server.url,
            **{BY_NAME[name].address_setting: address for name, address in addresses.items()},
        )
        async with running(build_server(settings)) as channel:
            yield Gateway(channel, key)


def subject(route: Route) -> Message:
    """A request about a sandbox person with an answer.

    The first such person of the population; for a FranceConnect method, the first
    sandbox FranceConnect token holding every scope of the method stands for them
    (the first person of the population must be that token's).
    """
    name, kind = route.subject.name, route.subject.kind
    request = route.request_class()
    request.CopyFrom(next(case.request for case in _CASES if case.route is route and case.answers))
    if kind == options_pb2.SUBJECT_KIND_FRANCE_CONNECT:
        token = next(
            token
            for token in SANDBOX_TOKENS
            if token.active and not token.expired and route.plan.scopes <= set(token.scopes)
        )
        getattr(request, name).Clear()
        getattr(request, name).access_token = token.token
    return request


def scoped_paths(message: Any, scope: str, prefix: str = "") -> Iterator[str]:
    """The paths of the fields ``scope`` unlocks, read from the field options (not from masking)."""
    for field in message.fields:
        path = f"{prefix}{field.name}"
        if field_options(field)[0] == scope:
            yield path
        elif field.message_type is not None and not field.message_type.full_name.startswith("google."):
            yield from scoped_paths(field.message_type, scope, f"{path}.")


def clear(message: Message, path: str) -> None:
    """Clear the field at ``path``, in every element of the lists it goes through."""
    name, _, rest = path.partition(".")
    if not rest:
        message.ClearField(name)
        return
    field = message.DESCRIPTOR.fields_by_name[name]
    items = getattr(message, name) if field.is_repeated else [getattr(message, name)]
    for item in items:
        clear(item, rest)


SCOPED = [(route, scope) for route in ROUTES.routes for scope in sorted(route.plan.scopes)]


@pytest.mark.parametrize(("route", "scope"), SCOPED, ids=[f"{r.method}-{s}" for r, s in SCOPED])
async def test_a_token_lacking_one_scope_gets_its_fields_withheld(
    gateway: Gateway, route: Route, scope: str
) -> None:
    """The fields of the missing scope are cleared and named, the rest is what every scope gets."""
    request = subject(route)
    full = await gateway.call(route, request, route.plan.scopes)
    assert withheld_of(full) == []
    lacking = route.plan.scopes - {scope}
    if not lacking & route.scopes:
        # The scope alone opens the method: without it the call is refused, nothing withheld.
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await gateway.call(route, request, lacking)
        assert rich_status(refused.value).api_code == "00100"
        return
    masked = await gateway.call(route, request, lacking)
    expected = list(scoped_paths(getattr(full, DATA_FIELD).DESCRIPTOR, scope))
    assert expected and sorted(withheld_of(masked)) == sorted(expected)
    for path in expected:
        clear(getattr(full, DATA_FIELD), path)
    assert getattr(masked, DATA_FIELD) == getattr(full, DATA_FIELD)
    assert data_object(masked) == render(getattr(full, DATA_FIELD), frozenset(expected))


async def test_rsa_without_its_own_scope_names_est_beneficiaire_withheld(gateway: Gateway) -> None:
    """A token holding only revenu_solidarite_active_majoration: est_beneficiaire is unset and withheld."""
    route = ROUTES.by_path()["/apiparticulier.cnaf.v1.CnafService/GetRevenuSolidariteActiveByIdentity"]
    answer = await gateway.call(route, subject(route), frozenset({"revenu_solidarite_active_majoration"}))
    assert isinstance(answer, cnaf_pb2.GetRevenuSolidariteActiveByIdentityResponse)
    assert not answer.data.HasField("est_beneficiaire")
    assert "est_beneficiaire" in withheld_of(answer)
    assert data_object(answer) == {"avec_majoration": False}
