"""The fan-out lookup over gRPC on loopback: real providers (one slow, one down), a real gateway and Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
import structlog
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from apiparticulier.c2s.v1 import c2s_pb2, c2s_pb2_grpc
from apiparticulier.cnaf.v1 import cnaf_pb2, cnaf_pb2_grpc
from apiparticulier.cnous.v1 import cnous_pb2, cnous_pb2_grpc
from apiparticulier.common.v1 import error_pb2, identity_pb2
from apiparticulier.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from apiparticulier.men.v1 import men_pb2
from contract.routes import build_routes
from devstack.redis import RedisProcess
from gateway.app import build_server
from gateway.grpc.lookup import fill_parameters
from runtime.caller import Caller
from runtime.server import GrpcServer, ServiceDefinition
from services.c2s.app import C2S
from services.c2s.sandbox import POPULATION_FILE as C2S_POPULATION
from services.c2s.sandbox import SandboxC2sBackend
from services.c2s.servicer import C2sServicer
from services.cnaf.app import CNAF
from services.cnaf.backend import Benefit, BenefitData
from services.cnaf.sandbox import POPULATION_FILE as CNAF_POPULATION
from services.cnaf.sandbox import SandboxCnafBackend
from services.cnaf.servicer import CnafServicer
from services.cnous.app import CNOUS
from services.cnous.sandbox import POPULATION_FILE as CNOUS_POPULATION
from services.cnous.sandbox import SandboxCnousBackend
from services.cnous.servicer import CnousServicer
from services.common.sandbox import SandboxPopulation
from services.common.settings import ProviderSettings
from tests.fake_provider import closed_port
from tests.gateway.conftest import gateway_settings
from tests.gateway.tokens import SigningKey, TokenFactory
from tests.people import lefebvre
from tests.rich_status import rich_status

RECIPIENT = "13002526500013"
DELAYS = {"quotient_familial": 0.3, "revenu_solidarite_active": 0.4, "prime_activite": 0.5, "c2s": 0.6}
SLOW_SECONDS = 5.0
LOOKUP_DEADLINE = 1.2

SIX_SCOPES = [
    "cnaf_quotient_familial",
    "revenu_solidarite_active",
    "prime_activite",
    "complementaire_sante_solidaire",
    "cnous_statut_boursier",
    "men_statut_scolarite",
]
SIX_APIS = [
    gateway_pb2.API_QUOTIENT_FAMILIAL,
    gateway_pb2.API_REVENU_SOLIDARITE_ACTIVE,
    gateway_pb2.API_PRIME_ACTIVITE,
    gateway_pb2.API_COMPLEMENTAIRE_SANTE_SOLIDAIRE,
    gateway_pb2.API_ETUDIANT_BOURSIER,
    gateway_pb2.API_SCOLARITE,
]


class RecordingSlowCnaf(SandboxCnafBackend):
    """The cnaf sandbox, each API waiting its own delay, recording what it was asked."""

    def __init__(self) -> None:
        super().__init__(SandboxPopulation.load(CNAF_POPULATION))
        self.asked: list[str] = []

    async def quotient_familial(
        self, identity: identity_pb2.IdentityPivot, year: int, month: int, caller: Caller
    ) -> cnaf_pb2.QuotientFamilialData:
        self.asked.append("quotient_familial")
        await asyncio.sleep(DELAYS["quotient_familial"])
        return await super().quotient_familial(identity, year, month, caller)

    async def benefit(
        self,
        benefit: Benefit,
        data_type: type[BenefitData],
        identity: identity_pb2.IdentityPivot,
        caller: Caller,
    ) -> BenefitData:
        self.asked.append(benefit.value)
        await asyncio.sleep(DELAYS.get(benefit.value, 0.0))
        return await super().benefit(benefit, data_type, identity, caller)


class SlowC2s(SandboxC2sBackend):
    """The c2s sandbox, answering after its delay."""

    def __init__(self) -> None:
        super().__init__(SandboxPopulation.load(C2S_POPULATION))

    async def complementaire_sante_solidaire(
        self, identity: identity_pb2.IdentityPivot, caller: Caller
    ) -> c2s_pb2.ComplementaireSanteSolidaireData:
        await asyncio.sleep(DELAYS["c2s"])
        return await super().complementaire_sante_solidaire(identity, caller)


class StuckCnous(SandboxCnousBackend):
    """The cnous sandbox, slower than any lookup's deadline."""

    def __init__(self) -> None:
        super().__init__(SandboxPopulation.load(CNOUS_POPULATION))

    async def by_identity(
        self, identity: identity_pb2.IdentityPivot, campaign: int | None, caller: Caller
    ) -> cnous_pb2.EtudiantBoursierV5Data:
        await asyncio.sleep(SLOW_SECONDS)
        return await super().by_identity(identity, campaign, caller)


def provider_server(name: str, add: Callable[[Any, grpc.aio.Server], None], servicer: Any) -> GrpcServer:
    return GrpcServer(
        ProviderSettings(grpc_host="127.0.0.1", grpc_port=0),
        [ServiceDefinition(name, lambda server: add(servicer, server))],
    )


@dataclass
class Stack:
    channel: grpc.aio.Channel
    stub: Any
    cnaf: RecordingSlowCnaf
    factory: TokenFactory
    gateway: GrpcServer
    providers: list[GrpcServer] = field(default_factory=list)

    def metadata(self, **claims: Any) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.factory.token(**claims)}"), ("x-recipient", RECIPIENT))


@pytest.fixture(scope="module")
async def stack(
    redis_server: RedisProcess, keys_dir: tuple[Path, SigningKey, SigningKey]
) -> AsyncIterator[Stack]:
    directory, es, _ed = keys_dir
    cnaf_backend = RecordingSlowCnaf()
    cnaf = provider_server(
        CNAF.service_name, cnaf_pb2_grpc.add_CnafServiceServicer_to_server, CnafServicer(cnaf_backend)
    )
    c2s = provider_server(
        C2S.service_name, c2s_pb2_grpc.add_C2sServiceServicer_to_server, C2sServicer(SlowC2s())
    )
    cnous = provider_server(
        CNOUS.service_name, cnous_pb2_grpc.add_CnousServiceServicer_to_server, CnousServicer(StuckCnous())
    )
    providers = [cnaf, c2s, cnous]
    for server in providers:
        await server.start()
    gateway = build_server(
        gateway_settings(
            directory,
            redis_server.url,
            cnaf_address=f"127.0.0.1:{cnaf.port}",
            c2s_address=f"127.0.0.1:{c2s.port}",
            cnous_address=f"127.0.0.1:{cnous.port}",
            men_address=f"127.0.0.1:{closed_port()}",
        )
    )
    await gateway.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}")
    try:
        yield Stack(
            channel,
            gateway_pb2_grpc.GatewayServiceStub(channel),
            cnaf_backend,
            TokenFactory(es, scopes=list(SIX_SCOPES)),
            gateway,
            providers,
        )
    finally:
        await channel.close(None)
        await gateway.stop(0)
        for server in providers:
            await server.stop(0)


def error_info(error: error_pb2.CallError) -> error_details_pb2.ErrorInfo:
    for detail in error.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    raise AssertionError("no ErrorInfo")


def unpack(packed: any_pb2.Any, kind: type[Any]) -> Any:
    message = kind()
    assert packed.Unpack(message)
    return message


async def test_six_apis_one_slow_one_down_answer_in_the_time_of_the_slowest(stack: Stack) -> None:
    """Four good answers, the slow provider's timeout and the down provider's error, concurrently."""
    request = gateway_pb2.LookupRequest(
        identite=lefebvre(),
        apis=SIX_APIS,
        parameters=gateway_pb2.LookupParameters(annee_scolaire="2025-2026"),
    )
    started = time.perf_counter()
    response = await stack.stub.Lookup(request, metadata=stack.metadata(), timeout=LOOKUP_DEADLINE)
    elapsed = time.perf_counter() - started
    print(
        f"lookup of six APIs: {elapsed:.3f} s "
        f"(good delays {sorted(DELAYS.values())}, deadline {LOOKUP_DEADLINE} s)"
    )

    assert [result.api for result in response.results] == SIX_APIS
    qf, rsa, pa, c2s, boursier, scolarite = response.results
    assert (
        unpack(qf.response, cnaf_pb2.GetQuotientFamilialByIdentityResponse).data.quotient_familial.fournisseur
        == "CNAF"
    )
    assert unpack(rsa.response, cnaf_pb2.GetRevenuSolidariteActiveByIdentityResponse).data.est_beneficiaire
    assert unpack(pa.response, cnaf_pb2.GetPrimeActiviteByIdentityResponse).data.est_beneficiaire
    assert unpack(
        c2s.response, c2s_pb2.GetComplementaireSanteSolidaireByIdentityResponse
    ).data.est_beneficiaire
    assert boursier.error.code == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    assert error_info(boursier.error).metadata["code"] == "26002"
    assert scolarite.error.code == grpc.StatusCode.UNAVAILABLE.value[0]
    assert error_info(scolarite.error).metadata["code"] == "30001"
    # Concurrent: about the deadline the slow provider runs into, far below the sum of the delays.
    assert max(DELAYS.values()) <= elapsed < sum(DELAYS.values())
    assert elapsed < LOOKUP_DEADLINE + 0.2


async def test_masking_follows_the_token_scopes(stack: Stack) -> None:
    """A quotient familial in a lookup is masked as a direct call would be."""
    response = await stack.stub.Lookup(
        gateway_pb2.LookupRequest(identite=lefebvre(), apis=[gateway_pb2.API_QUOTIENT_FAMILIAL]),
        metadata=stack.metadata(),
    )
    data = unpack(response.results[0].response, cnaf_pb2.GetQuotientFamilialByIdentityResponse).data
    assert data.quotient_familial.valeur > 0
    assert not data.allocataires and not data.enfants and not data.HasField("adresse")


async def test_scopeless_api_is_refused_and_not_called(stack: Stack) -> None:
    """AAH without its scope: 00100 for it, and the cnaf backend never asked about it."""
    stack.cnaf.asked.clear()
    response = await stack.stub.Lookup(
        gateway_pb2.LookupRequest(
            identite=lefebvre(),
            apis=[gateway_pb2.API_ALLOCATION_ADULTE_HANDICAPE, gateway_pb2.API_QUOTIENT_FAMILIAL],
        ),
        metadata=stack.metadata(),
    )
    aah, qf = response.results
    assert aah.api == gateway_pb2.API_ALLOCATION_ADULTE_HANDICAPE
    assert aah.error.code == grpc.StatusCode.PERMISSION_DENIED.value[0]
    assert error_info(aah.error).metadata["code"] == "00100"
    assert qf.HasField("response")
    assert stack.cnaf.asked == ["quotient_familial"]


async def test_missing_parameters_are_reported_per_api(stack: Stack) -> None:
    """France Travail or SDH without identifiant (00380), MEN without school year (00411): not called."""
    factory = TokenFactory(
        stack.factory.key,
        scopes=["pole_emploi_identite", "men_statut_scolarite", "sdh_statut_sportif_identite"],
    )
    response = await stack.stub.Lookup(
        gateway_pb2.LookupRequest(
            identite=lefebvre(),
            apis=[
                gateway_pb2.API_FRANCE_TRAVAIL_STATUT,
                gateway_pb2.API_SCOLARITE,
                gateway_pb2.API_STATUT_SPORTIF,
            ],
        ),
        metadata=(
            ("authorization", factory.bearer()),
            ("x-recipient", RECIPIENT),
            ("x-request-id", "44444444-4444-4444-8444-444444444444"),
        ),
    )
    codes = [(r.error.code, error_info(r.error).metadata["code"]) for r in response.results]
    invalid = grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert codes == [(invalid, "00380"), (invalid, "00411"), (invalid, "00380")]
    # The Lookup's own refusals name the call, as every refusal of the mesh does.
    assert {error_info(r.error).metadata["request_id"] for r in response.results} == {
        "44444444-4444-4444-8444-444444444444"
    }
    bad = error_details_pb2.BadRequest()
    assert any(detail.Unpack(bad) for detail in response.results[2].error.details)
    assert [v.field for v in bad.field_violations] == ["parameters.identifiantSportif"]


async def test_an_api_not_asked_about_this_kind_of_subject_is_refused(stack: Stack) -> None:
    """ANTS answers FranceConnect users only: by identity pivot it is 00400 naming the subject, not called."""
    factory = TokenFactory(
        stack.factory.key, scopes=["ants_extrait_immatriculation_vehicule_statut_rattachement"]
    )
    response = await stack.stub.Lookup(
        gateway_pb2.LookupRequest(
            identite=lefebvre(),
            apis=[gateway_pb2.API_EXTRAIT_IMMATRICULATION_VEHICULE],
            parameters=gateway_pb2.LookupParameters(immatriculation="SB-101-AA"),
        ),
        metadata=(("authorization", factory.bearer()), ("x-recipient", RECIPIENT)),
    )
    (result,) = response.results
    assert (result.error.code, error_info(result.error).metadata["code"]) == (
        grpc.StatusCode.INVALID_ARGUMENT.value[0],
        "00400",
    )
    bad = error_details_pb2.BadRequest()
    assert any(detail.Unpack(bad) for detail in result.error.details)
    assert [v.field for v in bad.field_violations] == ["identite"]


async def test_a_lookup_naming_no_api_is_refused_and_calls_none(stack: Stack) -> None:
    """Data minimisation: no API named is no "every API the token opens", but 00400 on ``apis``."""
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stack.stub.Lookup(
            gateway_pb2.LookupRequest(identite=lefebvre()),
            metadata=stack.metadata(scopes=["cnaf_quotient_familial", "complementaire_sante_solidaire"]),
        )
    status = rich_status(refused.value)
    assert (status.api_code, status.violated_fields) == ("00400", {"apis"})


async def test_error_is_the_one_a_direct_call_gets(stack: Stack) -> None:
    """A person unknown to the caisses: the CallError has the direct call's status, message and details."""
    unknown = identity_pb2.IdentityPivot(
        nom_naissance="INCONNU",
        prenoms=["PAUL"],
        annee_date_naissance=1990,
        mois_date_naissance=1,
        jour_date_naissance=1,
        sexe_etat_civil="M",
        code_cog_insee_pays_naissance="99100",
    )
    direct = cnaf_pb2_grpc.CnafServiceStub(stack.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await direct.GetRevenuSolidariteActiveByIdentity(
            cnaf_pb2.GetRevenuSolidariteActiveByIdentityRequest(identite=unknown),
            metadata=(*stack.metadata(), ("x-request-id", "55555555-5555-4555-8555-555555555555")),
        )
    pairs: Any = caught.value.trailing_metadata() or ()
    trailers = dict(pairs)
    expected = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    response = await stack.stub.Lookup(
        gateway_pb2.LookupRequest(identite=unknown, apis=[gateway_pb2.API_REVENU_SOLIDARITE_ACTIVE]),
        metadata=(*stack.metadata(), ("x-request-id", "55555555-5555-4555-8555-555555555555")),
    )
    error = response.results[0].error
    code: Any = caught.value.code().value[0]  # the stubs type StatusCode.value loosely
    assert error.code == code == grpc.StatusCode.NOT_FOUND.value[0]
    assert error.message == caught.value.details()
    assert list(error.details) == list(expected.details)


async def test_each_provider_call_is_journalled_counted_and_rate_limited(stack: Stack) -> None:
    """Sub-calls leave journal events of their API, count in the usage statistics, and in the rate limit."""
    request_id = "66666666-6666-4666-8666-666666666666"
    token = stack.factory.token(scopes=["cnaf_quotient_familial", "complementaire_sante_solidaire"])
    metadata = (("authorization", f"Bearer {token}"), ("x-recipient", RECIPIENT))
    own = (*metadata, ("x-request-id", request_id))  # other tests' calls may be journalled meanwhile
    apis = [gateway_pb2.API_QUOTIENT_FAMILIAL, gateway_pb2.API_COMPLEMENTAIRE_SANTE_SOLIDAIRE]
    with structlog.testing.capture_logs() as events:
        call = stack.stub.Lookup(gateway_pb2.LookupRequest(identite=lefebvre(), apis=apis), metadata=own)
        await call
        trailers: dict[str, Any] = dict(tuple(await call.trailing_metadata()))
        # Written once the answers have left, in the next batch of step 8.
        written_by = time.monotonic() + 2
        journal: list[MutableMapping[str, Any]] = []
        while len(journal) < 3 and time.monotonic() < written_by:
            await asyncio.sleep(0.005)
            journal = [e for e in events if e.get("event") == "api_call" and e["request_id"] == request_id]
    methods = sorted(e["method"] for e in journal)
    assert methods == [
        "/apiparticulier.c2s.v1.C2sService/GetComplementaireSanteSolidaireByIdentity",
        "/apiparticulier.cnaf.v1.CnafService/GetQuotientFamilialByIdentity",
        "/apiparticulier.gateway.v1.GatewayService/Lookup",
    ]
    assert all(e["status"] == "OK" and e["subject_digest"] for e in journal)
    # Three admissions (the lookup and its two provider calls) out of a burst of 20.
    assert trailers["ratelimit-remaining"] == "17"

    deadline = time.monotonic() + 5
    while True:
        usage = await stack.stub.GetUsageStatistics(
            gateway_pb2.GetUsageStatisticsRequest(days=1), metadata=metadata
        )
        counted = {(c.api, c.outcome): c.calls for c in usage.counts}
        if sum(counted.values()) >= 2 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert counted == {
        (gateway_pb2.API_QUOTIENT_FAMILIAL, "OK"): 1,
        (gateway_pb2.API_COMPLEMENTAIRE_SANTE_SOLIDAIRE, "OK"): 1,
    }


async def test_a_sub_call_over_the_rate_limit_is_that_apis_00429(stack: Stack) -> None:
    """A token with 2 requests per second: past its bucket, provider calls come back 00429 one by one."""
    token = stack.factory.token(rate_limit=2)
    metadata = (("authorization", f"Bearer {token}"), ("x-recipient", RECIPIENT))
    apis = [gateway_pb2.API_QUOTIENT_FAMILIAL, gateway_pb2.API_COMPLEMENTAIRE_SANTE_SOLIDAIRE]
    # A bucket of 2 (the burst follows the token's rate): the lookup takes one admission, one of
    # its provider calls the other, and the second provider call is refused.
    outcomes = [
        await stack.stub.Lookup(gateway_pb2.LookupRequest(identite=lefebvre(), apis=apis), metadata=metadata)
    ]
    limited = [
        error_info(r.error).metadata["code"]
        for outcome in outcomes
        if isinstance(outcome, gateway_pb2.LookupResponse)
        for r in outcome.results
        if r.HasField("error")
    ]
    assert limited and set(limited) == {"00429"}
    answered = [r for o in outcomes if isinstance(o, gateway_pb2.LookupResponse) for r in o.results]
    assert any(r.HasField("response") for r in answered)


def test_school_filters_reach_the_men_request() -> None:
    """The lookup's school year, establishment and perimeter go into the fields the MEN contract declares."""
    routes = build_routes().by_path()
    message = men_pb2.GetScolariteByIdentityRequest()
    fill_parameters(
        gateway_pb2.LookupParameters(
            annee_scolaire=" 2025-2026 ", degre_etablissement="2D", codes_bcn_departements=["075", "069"]
        ),
        routes["/apiparticulier.men.v1.MenService/GetScolariteByIdentity"],
        message,
    )
    assert message.annee_scolaire == "2025-2026"
    assert message.degre_etablissement == "2D"
    assert list(message.codes_bcn_departements) == ["075", "069"]
    assert message.code_etablissement == ""
    quotient = cnaf_pb2.GetQuotientFamilialByIdentityRequest()
    fill_parameters(
        gateway_pb2.LookupParameters(annee=2025, mois=6, code_etablissement="0132733A"),
        routes["/apiparticulier.cnaf.v1.CnafService/GetQuotientFamilialByIdentity"],
        quotient,
    )
    assert (quotient.annee, quotient.mois) == (2025, 6)
