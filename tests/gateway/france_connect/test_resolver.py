"""FranceConnect subjects: sandbox tokens on the gateway fixture, and FranceConnect as a real HTTP server."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from apiparticulier.cnaf.v1 import cnaf_pb2, cnaf_pb2_grpc
from apiparticulier.common.v1 import identity_pb2
from apiparticulier.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from apiparticulier.mesr.v1 import mesr_pb2, mesr_pb2_grpc
from devstack.redis import RedisProcess
from gateway.app import build_server
from gateway.france_connect.resolver import pivot_of
from gateway.france_connect.sandbox import SANDBOX_TOKENS
from runtime.server import GrpcServer
from services.cnaf.app import CNAF
from services.cnaf.settings import CnafSettings
from tests.fake_provider import Answer, FakeProvider, closed_port, json_answer
from tests.gateway.conftest import Mesh, gateway_settings
from tests.gateway.tokens import SigningKey, TokenFactory
from tests.people import LEFEBVRE_CLAIMS, lefebvre_in_capitals
from tests.rich_status import rich_status

RECIPIENT = "13002526500013"
CHECKTOKEN = "/api/v2/checktoken"
CNAF_SCOPES = ["cnaf_quotient_familial", "cnaf_allocataires", "cnaf_enfants", "cnaf_adresse"]


def qf_by_fc(token: str, **subject: Any) -> cnaf_pb2.GetQuotientFamilialByFranceConnectRequest:
    return cnaf_pb2.GetQuotientFamilialByFranceConnectRequest(
        france_connect=identity_pb2.FranceConnectSubject(access_token=token, **subject)
    )


def metadata(factory: TokenFactory, **claims: Any) -> tuple[tuple[str, str], ...]:
    return (("authorization", factory.bearer(**claims)), ("x-recipient", RECIPIENT))


def introspection(active: bool = True, exp_in: int = 300, **claims: Any) -> dict[str, Any]:
    """An answer of FranceConnect's introspection endpoint, shaped as the schema says."""
    now = int(time.time())
    body: dict[str, Any] = {
        "active": active,
        "aud": "service-provider",
        "sub": "b6048e95bb134ec5b1d1e1fa69f287172e91722b9354d637a1bcf2ebb0fd2ef5v1",
        "iat": now - 10,
        "exp": now + exp_in,
        "acr": "eidas1",
        "jti": "a1b2c3",
        "scope": "openid identite_pivot given_name family_name birthdate gender birthplace birthcountry "
        "cnaf_quotient_familial cnaf_allocataires",
        **LEFEBVRE_CLAIMS,
    }
    body.update(claims)
    return {"aud": "api-particulier", "iat": now, "iss": "https://franceconnect", "token_introspection": body}


# -- the mapping -------------------------------------------------------------------------------------


def test_identity_pivot_mapping() -> None:
    """family_name, given_name split, birthdate, gender male/female → M/F, birthplace, birthcountry."""
    pivot = pivot_of(introspection()["token_introspection"])
    assert pivot == lefebvre_in_capitals()
    abroad = pivot_of(
        introspection(gender="male", birthdate="1975-05-00", birthplace="", birthcountry="99350")[
            "token_introspection"
        ]
    )
    assert abroad is not None
    assert abroad.sexe_etat_civil == "M"
    assert abroad.mois_date_naissance == 5 and not abroad.HasField("jour_date_naissance")
    assert abroad.code_cog_insee_commune_naissance == ""
    assert pivot_of(introspection(birthdate="27/12/1982")["token_introspection"]) is None
    assert pivot_of(introspection(gender="other")["token_introspection"]) is None


# -- sandbox tokens on the gateway fixture ---------------------------------------------------------


async def test_sandbox_token_resolves_to_its_person(mesh: Mesh) -> None:
    """fc-lefebvre: the quotient familial of LEFEBVRE, whatever identity the caller slipped in."""
    stub = cnaf_pb2_grpc.CnafServiceStub(mesh.channel)
    moreau = identity_pb2.IdentityPivot(nom_naissance="MOREAU", prenoms=["JEAN"], sexe_etat_civil="M")
    answer = await stub.GetQuotientFamilialByFranceConnect(
        qf_by_fc("fc-lefebvre", identite_pivot=moreau, scopes=["everything"]), metadata=metadata(mesh.factory)
    )
    assert answer.data.quotient_familial.fournisseur == "CNAF"
    assert answer.data.allocataires[0].nom_naissance == "LEFEBVRE"


async def test_scopes_are_those_of_both_tokens(mesh: Mesh) -> None:
    """fc-lefebvre-qf carries cnaf_quotient_familial only: the household lists are masked."""
    stub = cnaf_pb2_grpc.CnafServiceStub(mesh.channel)
    answer = await stub.GetQuotientFamilialByFranceConnect(
        qf_by_fc("fc-lefebvre-qf"), metadata=metadata(mesh.factory)
    )
    assert answer.data.quotient_familial.valeur > 0
    assert not answer.data.allocataires and not answer.data.enfants and not answer.data.HasField("adresse")


async def test_france_connect_scopes_disjoint_from_the_method_are_refused(mesh: Mesh) -> None:
    """fc-bernard carries MESR scopes only: the quotient familial is refused, 00100."""
    stub = cnaf_pb2_grpc.CnafServiceStub(mesh.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetQuotientFamilialByFranceConnect(qf_by_fc("fc-bernard"), metadata=metadata(mesh.factory))
    assert rich_status(caught.value).api_code == "00100"


@pytest.mark.parametrize(
    ("token", "code"),
    [("fc-inactive", "51502"), ("fc-expired", "51502"), ("no-such-token", "51502"), ("bad token", "51501")],
)
async def test_refused_france_connect_tokens(mesh: Mesh, token: str, code: str) -> None:
    """Inactive, expired, unknown or malformed FranceConnect tokens: UNAUTHENTICATED with a 51 code."""
    stub = cnaf_pb2_grpc.CnafServiceStub(mesh.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetQuotientFamilialByFranceConnect(qf_by_fc(token), metadata=metadata(mesh.factory))
    status = rich_status(caught.value)
    assert status.code is grpc.StatusCode.UNAUTHENTICATED
    assert status.api_code == code
    assert status.error_info.metadata["provider"] == "FranceConnect"


async def test_answer_has_no_identite(mesh: Mesh) -> None:
    """A FranceConnect answer never carries identite, even to a token holding mesri_identite."""
    factory = TokenFactory(mesh.factory.key, scopes=["mesri_identite", "mesri_admissions"])
    stub = mesr_pb2_grpc.MesrServiceStub(mesh.channel)
    request = mesr_pb2.GetStatutEtudiantByFranceConnectRequest(
        france_connect=identity_pb2.FranceConnectSubject(access_token="fc-bernard")
    )
    answer = await stub.GetStatutEtudiantByFranceConnect(request, metadata=metadata(factory))
    assert answer.data.admissions
    # The message has no identite field, and no identity travels as an unknown field either.
    assert "identite" not in answer.data.DESCRIPTOR.fields_by_name
    assert b"BERNARD" not in answer.SerializeToString()


async def test_lookup_with_a_france_connect_subject(mesh: Mesh) -> None:
    """A lookup by FranceConnect: the APIs named, those without FC method (MEN) refused and not called."""
    factory = TokenFactory(
        mesh.factory.key, scopes=[*CNAF_SCOPES, "revenu_solidarite_active", "men_statut_scolarite"]
    )
    stub = gateway_pb2_grpc.GatewayServiceStub(mesh.channel)
    response = await stub.Lookup(
        gateway_pb2.LookupRequest(
            france_connect=identity_pb2.FranceConnectSubject(access_token="fc-lefebvre"),
            apis=[gateway_pb2.API_QUOTIENT_FAMILIAL, gateway_pb2.API_REVENU_SOLIDARITE_ACTIVE],
        ),
        metadata=metadata(factory),
    )
    assert [r.api for r in response.results] == [
        gateway_pb2.API_QUOTIENT_FAMILIAL,
        gateway_pb2.API_REVENU_SOLIDARITE_ACTIVE,
    ]
    qf = cnaf_pb2.GetQuotientFamilialByFranceConnectResponse()
    assert response.results[0].response.Unpack(qf)
    assert qf.data.allocataires[0].nom_naissance == "LEFEBVRE"
    named = await stub.Lookup(
        gateway_pb2.LookupRequest(
            france_connect=identity_pb2.FranceConnectSubject(access_token="fc-lefebvre"),
            apis=[gateway_pb2.API_SCOLARITE],
            parameters=gateway_pb2.LookupParameters(annee_scolaire="2025"),
        ),
        metadata=metadata(factory),
    )
    # MEN has no FranceConnect method: refused, not called.
    assert named.results[0].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Lookup(
            gateway_pb2.LookupRequest(
                france_connect=identity_pb2.FranceConnectSubject(access_token="fc-expired"),
                apis=[gateway_pb2.API_QUOTIENT_FAMILIAL],
            ),
            metadata=metadata(factory),
        )
    assert rich_status(caught.value).api_code == "51502"


async def test_a_lookup_of_ants_needs_the_registration_number(mesh: Mesh) -> None:
    """ANTS asked by FranceConnect without immatriculation: 00430, not called."""
    factory = TokenFactory(
        mesh.factory.key, scopes=["ants_extrait_immatriculation_vehicule_statut_rattachement"]
    )
    response = await gateway_pb2_grpc.GatewayServiceStub(mesh.channel).Lookup(
        gateway_pb2.LookupRequest(
            france_connect=identity_pb2.FranceConnectSubject(access_token="fc-morel"),
            apis=[gateway_pb2.API_EXTRAIT_IMMATRICULATION_VEHICULE],
        ),
        metadata=metadata(factory),
    )
    (result,) = response.results
    assert result.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "00430" in result.error.message


def test_sandbox_tokens_are_distinct() -> None:
    assert len({t.token for t in SANDBOX_TOKENS}) == len(SANDBOX_TOKENS)


# -- upstream: FranceConnect played by a real HTTP server --------------------------------------------


@dataclass
class Upstream:
    fake: FakeProvider
    stub: Any
    factory: TokenFactory


@pytest.fixture(scope="module")
async def cnaf() -> AsyncIterator[GrpcServer]:
    server = CNAF.server(CnafSettings(grpc_host="127.0.0.1", grpc_port=0))
    await server.start()
    yield server
    await server.stop(0)


@pytest.fixture
def fake_france_connect() -> Iterator[FakeProvider]:
    with FakeProvider() as fake:
        yield fake


async def _gateway(
    redis_server: RedisProcess, keys: tuple[Path, SigningKey, SigningKey], cnaf: GrpcServer, url: str
) -> GrpcServer:
    server = build_server(
        gateway_settings(
            keys[0],
            redis_server.url,
            cnaf_address=f"127.0.0.1:{cnaf.port}",
            france_connect_mode="upstream",
            france_connect_introspection_url=url,
            france_connect_client_id="gateway-client",
            france_connect_client_secret="gateway-secret",
            france_connect_timeout_seconds=1.0,
        )
    )
    await server.start()
    return server


@pytest.fixture
async def upstream(
    redis_server: RedisProcess,
    keys_dir: tuple[Path, SigningKey, SigningKey],
    cnaf: GrpcServer,
    fake_france_connect: FakeProvider,
) -> AsyncIterator[Upstream]:
    gateway = await _gateway(redis_server, keys_dir, cnaf, fake_france_connect.url + CHECKTOKEN)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}")
    try:
        yield Upstream(fake_france_connect, cnaf_pb2_grpc.CnafServiceStub(channel), TokenFactory(keys_dir[1]))
    finally:
        await channel.close(None)
        await gateway.stop(0)


async def test_upstream_active_token(upstream: Upstream) -> None:
    """An active token: the gateway posts token and client credentials, maps the identity, masks by scope."""
    upstream.fake.script(CHECKTOKEN, json_answer(introspection()))
    answer = await upstream.stub.GetQuotientFamilialByFranceConnect(
        qf_by_fc("real-looking-access-token"), metadata=metadata(upstream.factory)
    )
    assert answer.data.allocataires[0].nom_naissance == "LEFEBVRE"
    # cnaf_enfants and cnaf_adresse are not in the FranceConnect token's scope.
    assert not answer.data.enfants and not answer.data.HasField("adresse")
    (sent,) = upstream.fake.to(CHECKTOKEN)
    assert sent.method == "POST"
    assert sent.form() == {
        "token": "real-looking-access-token",
        "client_id": "gateway-client",
        "client_secret": "gateway-secret",
    }


@pytest.mark.parametrize(
    ("make_answer", "status", "code"),
    [
        (lambda: json_answer(introspection(active=False)), grpc.StatusCode.UNAUTHENTICATED, "51502"),
        (
            lambda: json_answer({"token_introspection": {"active": False}}),
            grpc.StatusCode.UNAUTHENTICATED,
            "51502",
        ),
        (lambda: json_answer(introspection(exp_in=-5)), grpc.StatusCode.UNAUTHENTICATED, "51502"),
        (
            lambda: json_answer(introspection(birthdate="not a date")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "51564",
        ),
        (lambda: json_answer(introspection(gender=None)), grpc.StatusCode.INVALID_ARGUMENT, "51564"),
        (lambda: json_answer(introspection(family_name=" ")), grpc.StatusCode.INVALID_ARGUMENT, "51564"),
        (
            lambda: json_answer(introspection(scope="openid given_name family_name cnaf_quotient_familial")),
            grpc.StatusCode.UNAUTHENTICATED,
            "51503",
        ),
        (lambda: json_answer({"unexpected": True}), grpc.StatusCode.UNKNOWN, "51999"),
        (lambda: Answer(200, "<html>maintenance</html>"), grpc.StatusCode.UNKNOWN, "51999"),
        (lambda: json_answer({"error": "down"}, status=503), grpc.StatusCode.UNAVAILABLE, "51001"),
        pytest.param(
            lambda: Answer(200, json_answer(introspection()).body, delay=3.0),
            grpc.StatusCode.DEADLINE_EXCEEDED,
            "51002",
            marks=pytest.mark.timing,  # the answer races the gateway's one-second bound
        ),
    ],
    # Answers made when the test runs, not when it is collected: their expiry is relative to now.
    ids=[
        "inactive",
        "inactive-bare",
        "expired",
        "bad-birthdate",
        "no-gender",
        "blank-name",
        "no-pivot-scopes",
        "malformed",
        "not-json",
        "503",
        "slow",
    ],
)
async def test_upstream_refusals(
    upstream: Upstream, make_answer: Callable[[], Answer], status: grpc.StatusCode, code: str
) -> None:
    """What FranceConnect says, or fails to say, becomes one clear error; the provider is never asked."""
    upstream.fake.script(CHECKTOKEN, make_answer())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await upstream.stub.GetQuotientFamilialByFranceConnect(
            qf_by_fc("some-token"), metadata=metadata(upstream.factory)
        )
    found = rich_status(caught.value)
    assert (found.code, found.api_code) == (status, code)
    assert "LEFEBVRE" not in found.message


async def test_upstream_endpoint_down(
    redis_server: RedisProcess, keys_dir: tuple[Path, SigningKey, SigningKey], cnaf: GrpcServer
) -> None:
    """Nothing listens at the introspection URL: UNAVAILABLE, 51001."""
    gateway = await _gateway(redis_server, keys_dir, cnaf, f"http://127.0.0.1:{closed_port()}{CHECKTOKEN}")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}")
    try:
        stub = cnaf_pb2_grpc.CnafServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetQuotientFamilialByFranceConnect(
                qf_by_fc("some-token"), metadata=metadata(TokenFactory(keys_dir[1]))
            )
        found = rich_status(caught.value)
        assert (found.code, found.api_code) == (grpc.StatusCode.UNAVAILABLE, "51001")
    finally:
        await channel.close(None)
        await gateway.stop(0)


def test_upstream_mode_needs_credentials(keys_dir: tuple[Path, SigningKey, SigningKey]) -> None:
    settings = gateway_settings(keys_dir[0], "redis://127.0.0.1:1/0", france_connect_mode="upstream")
    with pytest.raises(ValueError, match="FRANCE_CONNECT_CLIENT_ID"):
        build_server(settings)


async def test_a_token_without_the_pivot_s_scopes_lists_its_scopes(upstream: Upstream) -> None:
    """51503, as the newest real API: the detail ends with the token's scopes (names, never a claim)."""
    upstream.fake.script(
        CHECKTOKEN, json_answer(introspection(scope="openid family_name cnaf_quotient_familial"))
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await upstream.stub.GetQuotientFamilialByFranceConnect(
            qf_by_fc("some-token"), metadata=metadata(upstream.factory)
        )
    found = rich_status(caught.value)
    assert found.api_code == "51503"
    assert found.localized is not None
    assert found.localized.message.endswith(
        "Le jeton possède les scopes suivants: openid, family_name, cnaf_quotient_familial"
    )
    assert found.error_info.metadata["provider"] == "FranceConnect"
    assert "LEFEBVRE" not in found.message
