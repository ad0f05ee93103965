"""The gateway's call path over gRPC on loopback: a real gateway, a real cnaf, a real Redis."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, MutableMapping
from typing import Any

import grpc
import jwt
import pytest
import redis.asyncio
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from apiparticulier.c2s.v1 import c2s_pb2, c2s_pb2_grpc
from apiparticulier.cnaf.v1 import cnaf_pb2, cnaf_pb2_grpc
from apiparticulier.common.v1 import identity_pb2
from apiparticulier.france_travail.v1 import france_travail_pb2, france_travail_pb2_grpc
from apiparticulier.mesr.v1 import mesr_pb2, mesr_pb2_grpc
from devstack.redis import RedisProcess
from gateway.rate_script import revoked_key
from runtime.logs import add_call_context
from tests.gateway.conftest import DEFAULT_DEADLINE_SECONDS, Mesh
from tests.gateway.tokens import TokenFactory, ed25519_key, es256_key
from tests.people import lefebvre
from tests.rich_status import rich_status

RECIPIENT = "13002526500013"
MESR_SCOPES = {
    "mesri_identite",
    "mesri_admissions",
    "mesri_admission_inscrit",
    "mesri_admission_regime_formation",
    "mesri_admission_commune_etudes",
    "mesri_admission_etablissement_etudes",
}


def qf_request(**overrides: Any) -> cnaf_pb2.GetQuotientFamilialByIdentityRequest:
    return cnaf_pb2.GetQuotientFamilialByIdentityRequest(identite=lefebvre(**overrides))


def metadata(authorization: str | None, recipient: str | None = RECIPIENT, *extra: tuple[str, str]):
    pairs = []
    if authorization is not None:
        pairs.append(("authorization", authorization))
    if recipient is not None:
        pairs.append(("x-recipient", recipient))
    return (*pairs, *extra)


def trailers_of(error: grpc.aio.AioRpcError) -> dict[str, Any]:
    """The trailing metadata of a failed call, by key."""
    pairs: Any = error.trailing_metadata() or ()
    return dict(pairs)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(document: dict[str, Any]) -> str:
    return b64(json.dumps(document).encode())


# -- the negative token corpus ----------------------------------------------------------------

BadToken = Callable[[TokenFactory], tuple[tuple[str, str], ...]]


def auth(value: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", value),)


def bearer(text: str) -> tuple[tuple[str, str], ...]:
    return auth(f"Bearer {text}")


def alg_none(f: TokenFactory) -> tuple[tuple[str, str], ...]:
    return bearer(f"{segment({'alg': 'none', 'kid': f.key.kid, 'typ': 'JWT'})}.{segment(f.claims())}.")


def alg_none_with_signature(f: TokenFactory) -> tuple[tuple[str, str], ...]:
    real = f.token().split(".")[2]
    return bearer(f"{segment({'alg': 'none', 'kid': f.key.kid, 'typ': 'JWT'})}.{segment(f.claims())}.{real}")


def hs256_with_public_key(f: TokenFactory) -> tuple[tuple[str, str], ...]:
    signing_input = f"{segment({'alg': 'HS256', 'kid': f.key.kid, 'typ': 'JWT'})}.{segment(f.claims())}"
    mac = hmac.new(f.key.public_pem, signing_input.encode(), hashlib.sha256).digest()
    return bearer(f"{signing_input}.{b64(mac)}")


def tampered_payload(f: TokenFactory) -> tuple[tuple[str, str], ...]:
    header, _, signature = f.token().split(".")
    forged = f.claims(scopes=["cnaf_quotient_familial", "revenu_solidarite_active"])
    return bearer(f"{header}.{segment(forged)}.{signature}")


def tampered_signature(f: TokenFactory) -> tuple[tuple[str, str], ...]:
    header, payload, signature = f.token().split(".")
    flipped = "A" if signature[5] != "A" else "B"
    return bearer(f"{header}.{payload}.{signature[:5]}{flipped}{signature[6:]}")


def signed_by(kid: str, **claims: Any) -> BadToken:
    def make(f: TokenFactory) -> tuple[tuple[str, str], ...]:
        return bearer(TokenFactory(es256_key(kid)).token(**claims))

    return make


def signed_raw(f: TokenFactory, **overrides: Any) -> str:
    """A token properly signed over claims pyjwt would refuse to encode."""
    payload = json.dumps(f.claims(**overrides)).encode()
    return jwt.api_jws.PyJWS().encode(
        payload, f.key.private, f.key.algorithm, {"kid": f.key.kid, "typ": "JWT"}
    )


def claims(**overrides: Any) -> BadToken:
    return lambda f: bearer(f.token(**overrides))


def header_fields(**headers: Any) -> BadToken:
    return lambda f: bearer(f.token(headers=headers))


NOW = int(time.time())
BAD_TOKENS: list[tuple[str, BadToken, str]] = [
    ("no authorization", lambda f: (), "00101"),
    ("empty", lambda f: auth(""), "00101"),
    ("Bearer alone", lambda f: auth("Bearer"), "00101"),
    ("Bearer and a space", lambda f: auth("Bearer "), "00101"),
    ("Basic scheme", lambda f: auth(f"Basic {f.token()}"), "00101"),
    ("no scheme", lambda f: auth(f.token()), "00101"),
    ("garbage", lambda f: bearer("garbage"), "00101"),
    ("three garbage segments", lambda f: bearer("abc.def.ghi"), "00101"),
    ("two tokens in one header", lambda f: bearer(f"{f.token()} {f.token()}"), "00101"),
    ("two tokens, comma", lambda f: bearer(f"{f.token()}, Bearer {f.token()}"), "00101"),
    ("two authorization entries", lambda f: (*bearer(f.token()), *bearer(f.token())), "00101"),
    ("alg none", alg_none, "00101"),
    ("alg none with a signature", alg_none_with_signature, "00101"),
    ("HS256 signed with the public key", hs256_with_public_key, "00101"),
    (
        "EdDSA under the ES256 key's kid",
        lambda f: bearer(jwt.encode(f.claims(), ed25519_key().private, "EdDSA", headers={"kid": f.key.kid})),
        "00101",
    ),
    (
        "ES384 header",
        lambda f: bearer(f"{segment({'alg': 'ES384', 'kid': f.key.kid})}.{f.token().split('.', 1)[1]}"),
        "00101",
    ),
    ("unknown kid", signed_by("nobody"), "00101"),
    ("right kid, another key", lambda f: signed_by(f.key.kid)(f), "00101"),
    ("no kid", lambda f: bearer(jwt.encode(f.claims(), f.key.private, f.key.algorithm)), "00101"),
    ("typ not JWT", header_fields(typ="at+jwt"), "00101"),
    ("wrong issuer", claims(iss="someone-else"), "00101"),
    ("wrong audience", claims(aud="api-entreprise"), "00101"),
    ("audience list without ours", claims(aud=["a", "b"]), "00101"),
    ("expired", claims(iat=NOW - 7200, nbf=NOW - 7200, exp=NOW - 3600), "00103"),
    ("not yet valid", claims(nbf=NOW + 3600), "00101"),
    ("iat in the future", claims(iat=NOW + 3600), "00101"),
    ("tampered payload", tampered_payload, "00101"),
    ("tampered signature", tampered_signature, "00101"),
    *[
        (f"missing {name}", claims(**{name: ...}), "00101")
        for name in ("iss", "aud", "exp", "nbf", "iat", "jti", "sub", "siret", "scopes")
    ],
    ("scopes a string", claims(scopes="cnaf_quotient_familial"), "00101"),
    ("scopes with a number", claims(scopes=["cnaf_quotient_familial", 3]), "00101"),
    ("siret a number", claims(siret=13002526500013), "00101"),
    ("sub a number", claims(sub=42), "00101"),
    ("sub empty", claims(sub=""), "00101"),
    ("exp a string", claims(exp=str(NOW + 3600)), "00101"),
    ("iss a list", lambda f: bearer(signed_raw(f, iss=["api-particulier-mesh"])), "00101"),
    ("jti not a UUID", claims(jti="not-a-uuid"), "00101"),
    ("jti a number", claims(jti=12345), "00101"),
    ("rate_limit zero", claims(rate_limit=0), "00101"),
    ("rate_limit a string", claims(rate_limit="20"), "00101"),
    ("rate_limit a boolean", claims(rate_limit=True), "00101"),
    ("oversized", claims(padding="x" * 5000), "00101"),
]


@pytest.mark.parametrize(("case", "make", "code"), BAD_TOKENS, ids=[case for case, _, _ in BAD_TOKENS])
async def test_bad_token_is_refused(mesh: Mesh, case: str, make: BadToken, code: str) -> None:
    """Each token of the negative corpus is UNAUTHENTICATED with its code in ErrorInfo."""
    stub = cnaf_pb2_grpc.CnafServiceStub(mesh.channel)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.GetQuotientFamilialByIdentity(
            qf_request(), metadata=(*make(mesh.factory), ("x-recipient", RECIPIENT))
        )
    status = rich_status(refused.value)
    assert status.code is grpc.StatusCode.UNAUTHENTICATED
    assert status.api_code == code
    assert len(BAD_TOKENS) >= 30


# -- the happy path, scopes and masking ----------------------------------------------------------


async def test_full_scopes_get_the_whole_answer_as_the_provider_sent_it(mesh: Mesh) -> None:
    """A token with every field scope gets the provider's answer whole, with request id and rate metadata."""
    stub = cnaf_pb2_grpc.CnafServiceStub(mesh.channel)
    call = stub.GetQuotientFamilialByIdentity(
        qf_request(),
        metadata=metadata(
            mesh.factory.bearer(), RECIPIENT, ("x-request-id", "77777777-7777-4777-8777-777777777777")
        ),
    )
    response = await call
    assert response.data.quotient_familial.valeur == 2550
    assert len(response.data.allocataires) == 2
    assert len(response.data.enfants) == 2
    assert response.data.adresse.code_postal_ville
    trailers = dict(await call.trailing_metadata())
    assert trailers["x-request-id"] == "77777777-7777-4777-8777-777777777777"
    assert {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= trailers.keys()


async def test_calls_ending_together_are_journalled_each_under_its_own_name(mesh: Mesh) -> None:
    """Step 8 runs for a batch of calls, after their answers, mixing none of their contexts."""
    stub = cnaf_pb2_grpc.CnafServiceStub(mesh.channel)
    header = mesh.factory.bearer()  # no scope of the RSA: those calls are refused, and journalled too
    names = {f"baccbacc-0000-4000-8000-{n:012d}": n % 2 == 0 for n in range(6)}

    async def call(request_id: str, quotient_familial: bool) -> None:
        own = metadata(header, RECIPIENT, ("x-request-id", request_id))
        with contextlib.suppress(grpc.aio.AioRpcError):
            if quotient_familial:
                await stub.GetQuotientFamilialByIdentity(qf_request(), metadata=own)
            else:
                rsa = cnaf_pb2.GetRevenuSolidariteActiveByIdentityRequest(identite=lefebvre())
                await stub.GetRevenuSolidariteActiveByIdentity(rsa, metadata=own)

    with structlog.testing.capture_logs(processors=[add_call_context]) as events:
        await asyncio.gather(*(call(name, qf) for name, qf in names.items()))
        written_by = time.monotonic() + 2
        journal: list[MutableMapping[str, Any]] = []
        while len(journal) < len(names) and time.monotonic() < written_by:
            await asyncio.sleep(0.005)
            journal = [e for e in events if e.get("event") == "api_call" and e["request_id"] in names]
    assert sorted(e["request_id"] for e in journal) == sorted(names)
    for event in journal:
        asked = "QuotientFamilial" if names[event["request_id"]] else "RevenuSolidariteActive"
        assert asked in event["method"]
        assert event.get("rpc", event["method"]) == event["method"]  # no other call's context
        assert event["status"] == ("OK" if names[event["request_id"]] else "PERMISSION_DENIED")


async def test_eddsa_tokens_work_too(mesh: Mesh) -> None:
    """A token signed with the Ed25519 key is accepted."""
    stub = cnaf_pb2_grpc.CnafServiceStub(mesh.channel)
    response = await stub.GetQuotientFamilialByIdentity(qf_request(), metadata=metadata(mesh.eddsa.bearer()))
    assert response.data.quotient_familial.valeur == 2550


async def _direct_quotient_familial(mesh: Mesh) -> cnaf_pb2.GetQuotientFamilialByIdentityResponse:
    """The provider's own answer, asked without the gateway."""
    direct: cnaf_pb2.GetQuotientFamilialByIdentityResponse = await cnaf_pb2_grpc.CnafServiceStub(
        mesh.cnaf_channel
    ).GetQuotientFamilialByIdentity(qf_request())
    return direct


async def test_only_quotient_familial_scope_masks_everything_else(mesh: Mesh) -> None:
    """With cnaf_quotient_familial only: the provider's quotient_familial as sent, the rest withheld."""
    stub = cnaf_pb2_grpc.CnafServiceStub(mesh.channel)
    response = await stub.GetQuotientFamilialByIdentity(
        qf_request(), metadata=metadata(mesh.factory.bearer(scopes=["cnaf_quotient_familial"]))
    )
    direct = await _direct_quotient_familial(mesh)
    assert direct.data.enfants and direct.data.allocataires and direct.data.HasField("adresse")
    expected = cnaf_pb2.GetQuotientFamilialByIdentityResponse()
    expected.data.quotient_familial.CopyFrom(direct.data.quotient_familial)
    expected.withheld.paths.extend(["allocataires", "enfants", "adresse"])
    assert response == expected
    assert response.data.quotient_familial.valeur == 2550


async def test_enfants_scope_alone(mesh: Mesh) -> None:
    """A token with only cnaf_enfants gets the children and nothing else."""
    stub = cnaf_pb2_grpc.CnafServiceStub(mesh.channel)
    response = await stub.GetQuotientFamilialByIdentity(
        qf_request(), metadata=metadata(mesh.factory.bearer(scopes=["cnaf_enfants", "unrelated"]))
    )
    direct = await _direct_quotient_familial(mesh)
    assert list(response.data.enfants) == list(direct.data.enfants)
    assert len(response.data.enfants) == 2
    assert not response.data.HasField("quotient_familial")
    assert not response.data.allocataires and not response.data.HasField("adresse")
    assert sorted(response.withheld.paths) == ["adresse", "allocataires", "quotient_familial"]


async def test_no_matching_scope_is_00100(mesh: Mesh) -> None:
    """A valid token without any scope of the method is PERMISSION_DENIED 00100."""
    stub = cnaf_pb2_grpc.CnafServiceStub(mesh.channel)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.GetRevenuSolidariteActiveByIdentity(
            cnaf_pb2.GetRevenuSolidariteActiveByIdentityRequest(identite=lefebvre()),
            metadata=metadata(mesh.factory.bearer()),
        )
    status = rich_status(refused.value)
    assert status.code is grpc.StatusCode.PERMISSION_DENIED
    assert status.api_code == "00100"


@pytest.mark.parametrize(
    ("recipient", "code"),
    [
        (None, "00203"),
        ("", "00203"),
        ("13002526500014", "00210"),
        ("1300252650001", "00210"),
        ("abc", "00210"),
    ],
)
async def test_recipient_refusals(mesh: Mesh, recipient: str | None, code: str) -> None:
    """A missing recipient is 00203 and an invalid one 00210, after the token and scope checks."""
    stub = cnaf_pb2_grpc.CnafServiceStub(mesh.channel)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.GetQuotientFamilialByIdentity(
            qf_request(), metadata=metadata(mesh.factory.bearer(), recipient)
        )
    status = rich_status(refused.value)
    assert status.code is grpc.StatusCode.INVALID_ARGUMENT
    assert status.api_code == code
    assert status.violated_fields == {"x-recipient"}


# -- what the provider sees ------------------------------------------------------------------------


async def test_provider_gets_context_and_a_bounded_deadline(mesh: Mesh) -> None:
    """The provider gets x-request-id, x-recipient, x-token-id, no token, and the caller's deadline."""
    stub = c2s_pb2_grpc.C2sServiceStub(mesh.channel)
    factory = TokenFactory(mesh.factory.key, scopes=["complementaire_sante_solidaire"])
    jti = str(uuid.uuid4())
    request = c2s_pb2.GetComplementaireSanteSolidaireByIdentityRequest(identite=lefebvre())
    mesh.c2s.calls.clear()

    call = stub.GetComplementaireSanteSolidaireByIdentity(
        request,
        timeout=2.0,
        metadata=metadata(
            factory.bearer(jti=jti), RECIPIENT, ("x-request-id", "88888888-8888-4888-8888-888888888888")
        ),
    )
    assert (await call).data.est_beneficiaire
    assert dict(await call.trailing_metadata())["x-request-id"] == "88888888-8888-4888-8888-888888888888"
    seen = mesh.c2s.calls[-1]
    assert seen.metadata["x-request-id"] == "88888888-8888-4888-8888-888888888888"
    assert seen.metadata["x-recipient"] == RECIPIENT
    assert seen.metadata["x-token-id"] == jti
    assert "authorization" not in seen.metadata
    # grpc-timeout travels rounded up to its unit, hence a few milliseconds of slack.
    assert seen.time_remaining is not None and 2.0 - 0.5 < seen.time_remaining <= 2.0 + 0.05

    for timeout in (None, 600.0):  # no deadline, or a longer one: the gateway's default bounds it
        await stub.GetComplementaireSanteSolidaireByIdentity(
            request, timeout=timeout, metadata=metadata(factory.bearer())
        )
        remaining = mesh.c2s.calls[-1].time_remaining
        assert (
            remaining is not None
            and DEFAULT_DEADLINE_SECONDS - 1 < remaining <= DEFAULT_DEADLINE_SECONDS + 0.05
        )


async def test_generated_request_id_is_forwarded_and_echoed(mesh: Mesh) -> None:
    """Without x-request-id the gateway makes one, sends it to the provider and back to the caller."""
    stub = c2s_pb2_grpc.C2sServiceStub(mesh.channel)
    factory = TokenFactory(mesh.factory.key, scopes=["complementaire_sante_solidaire"])
    call = stub.GetComplementaireSanteSolidaireByIdentity(
        c2s_pb2.GetComplementaireSanteSolidaireByIdentityRequest(identite=lefebvre()),
        metadata=metadata(factory.bearer()),
    )
    await call
    echoed = dict(await call.trailing_metadata())["x-request-id"]
    assert isinstance(echoed, str) and uuid.UUID(echoed)
    assert mesh.c2s.calls[-1].metadata["x-request-id"] == echoed


async def test_provider_timeout_is_deadline_exceeded(mesh: Mesh) -> None:
    """A provider slower than the caller's deadline ends the call with DEADLINE_EXCEEDED."""
    stub = c2s_pb2_grpc.C2sServiceStub(mesh.channel)
    factory = TokenFactory(mesh.factory.key, scopes=["complementaire_sante_solidaire"])
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.GetComplementaireSanteSolidaireByIdentity(
            c2s_pb2.GetComplementaireSanteSolidaireByIdentityRequest(identite=lefebvre(nom_naissance="LENT")),
            timeout=0.5,
            metadata=metadata(factory.bearer()),
        )
    assert refused.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED


# -- provider errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "first", "birth", "sex", "code", "api_code"),
    [
        ("Inconnu", "Paul", (1990, 1, 1), "M", grpc.StatusCode.NOT_FOUND, "35003"),
        ("Indisponible", "Lucie", (1985, 7, 14), "F", grpc.StatusCode.UNAVAILABLE, "37001"),
        ("Delai", "Marc", (1979, 2, 28), "M", grpc.StatusCode.DEADLINE_EXCEEDED, "37002"),
        ("Etrange", "Claire", (1992, 10, 5), "F", grpc.StatusCode.UNKNOWN, "37999"),
    ],
    ids=["not-found", "unavailable", "timeout", "unknown-answer"],
)
async def test_provider_errors_are_passed_through_unchanged(
    mesh: Mesh,
    name: str,
    first: str,
    birth: tuple[int, int, int],
    sex: str,
    code: grpc.StatusCode,
    api_code: str,
) -> None:
    """The provider's status, message and grpc-status-details-bin reach the caller byte for byte."""
    identity = identity_pb2.IdentityPivot(
        nom_naissance=name,
        prenoms=[first],
        annee_date_naissance=birth[0],
        mois_date_naissance=birth[1],
        jour_date_naissance=birth[2],
        sexe_etat_civil=sex,
        code_cog_insee_pays_naissance="99100",
    )
    request = cnaf_pb2.GetPrimeActiviteByIdentityRequest(identite=identity)
    factory = TokenFactory(mesh.factory.key, scopes=["prime_activite"])
    # One request id for both calls: it is part of the details (ErrorInfo metadata).
    request_id = ("x-request-id", f"99999999-9999-4999-8999-{api_code:0>12}")
    with pytest.raises(grpc.aio.AioRpcError) as through_gateway:
        await cnaf_pb2_grpc.CnafServiceStub(mesh.channel).GetPrimeActiviteByIdentity(
            request, metadata=metadata(factory.bearer(), RECIPIENT, request_id)
        )
    with pytest.raises(grpc.aio.AioRpcError) as direct:
        await cnaf_pb2_grpc.CnafServiceStub(mesh.cnaf_channel).GetPrimeActiviteByIdentity(
            request, metadata=(request_id,)
        )
    status = rich_status(through_gateway.value)
    assert (status.code, status.api_code) == (code, api_code)
    assert through_gateway.value.details() == direct.value.details()
    details = "grpc-status-details-bin"
    assert trailers_of(through_gateway.value)[details] == trailers_of(direct.value)[details]
    assert "ratelimit-limit" in trailers_of(through_gateway.value)


async def test_provider_validation_error_keeps_its_field_violations(mesh: Mesh) -> None:
    """A request the provider refuses comes back with its BadRequest field violations."""
    stub = cnaf_pb2_grpc.CnafServiceStub(mesh.channel)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.GetQuotientFamilialByIdentity(
            qf_request(mois_date_naissance=13), metadata=metadata(mesh.factory.bearer())
        )
    status = rich_status(refused.value)
    assert status.code is grpc.StatusCode.INVALID_ARGUMENT
    assert status.api_code == "00363"
    assert status.broken_rules == [("identite.anneeDateNaissance", "00363")]


async def test_provider_down_is_unavailable_naming_it(mesh: Mesh) -> None:
    """A provider nobody answers for is UNAVAILABLE, with the provider in ErrorInfo."""
    stub = france_travail_pb2_grpc.FranceTravailServiceStub(mesh.channel)
    factory = TokenFactory(mesh.factory.key, scopes=["pole_emploi_paiements"])
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.GetIndemnitesByIdentifiant(
            france_travail_pb2.GetIndemnitesByIdentifiantRequest(identifiant="default"),
            metadata=metadata(factory.bearer()),
        )
    status = rich_status(refused.value)
    assert status.code is grpc.StatusCode.UNAVAILABLE
    assert status.api_code == "24001"
    assert status.error_info.metadata["provider"] == "France Travail"
    assert status.retry is not None


# -- revocation and rate limit ------------------------------------------------------------------------


async def test_revoked_token_is_00105(mesh: Mesh, redis_server: RedisProcess) -> None:
    """A token whose jti is revoked in Redis is refused with 00105 on its next call."""
    stub = cnaf_pb2_grpc.CnafServiceStub(mesh.channel)
    jti = str(uuid.uuid4())
    header = mesh.factory.bearer(jti=jti)
    await stub.GetQuotientFamilialByIdentity(qf_request(), metadata=metadata(header))
    client = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        await client.set(revoked_key(jti), "1")
    finally:
        await client.aclose()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.GetQuotientFamilialByIdentity(qf_request(), metadata=metadata(header))
    status = rich_status(refused.value)
    assert status.code is grpc.StatusCode.UNAUTHENTICATED
    assert status.api_code == "00105"


async def test_over_the_token_rate_is_00429_with_metadata(mesh: Mesh) -> None:
    """Past its burst, a token is RESOURCE_EXHAUSTED 00429 with RetryInfo, QuotaFailure and retry-after."""
    stub = cnaf_pb2_grpc.CnafServiceStub(mesh.channel)
    header = mesh.factory.bearer(rate_limit=1)
    refusals = []
    for _ in range(40):
        try:
            await stub.GetQuotientFamilialByIdentity(qf_request(), metadata=metadata(header))
        except grpc.aio.AioRpcError as error:
            refusals.append(error)
            break
    assert refusals, "the limiter never refused"
    status = rich_status(refusals[0])
    assert status.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert status.api_code == "00429"
    assert status.retry is not None and status.quota is not None
    trailers: Any = refusals[0].trailing_metadata() or ()
    keys = [key for key, _ in trailers]
    assert keys.count("retry-after") == 1
    assert keys.count("ratelimit-remaining") == 1
    assert dict(trailers)["ratelimit-remaining"] == "0"


async def test_mesr_admissions_are_masked_field_by_field(mesh: Mesh) -> None:
    """Over gRPC with the real mesr: each admission keeps only the fields the token's scopes unlock."""
    stub = mesr_pb2_grpc.MesrServiceStub(mesh.channel)
    request = mesr_pb2.GetStatutEtudiantByIneRequest(ine="220345678AB")
    everything = await stub.GetStatutEtudiantByIne(
        request, metadata=metadata(TokenFactory(mesh.factory.key, scopes=sorted(MESR_SCOPES)).bearer())
    )
    assert len(everything.data.admissions) > 1
    assert everything.data.HasField("identite")
    partial = await stub.GetStatutEtudiantByIne(
        request,
        metadata=metadata(
            TokenFactory(
                mesh.factory.key, scopes=["mesri_admissions", "mesri_admission_regime_formation"]
            ).bearer()
        ),
    )
    assert not partial.data.HasField("identite")
    assert len(partial.data.admissions) == len(everything.data.admissions)
    for full, masked in zip(everything.data.admissions, partial.data.admissions, strict=True):
        assert masked.date_debut == full.date_debut
        assert masked.regime_formation == full.regime_formation
        assert not masked.est_inscrit
        assert not masked.code_cog_insee_commune
        assert not masked.HasField("etablissement_etudes")


# -- the gateway's own services -------------------------------------------------------------------------


async def test_health_and_reflection_still_work(mesh: Mesh) -> None:
    """grpc.health.v1 answers SERVING and reflection lists the provider services."""
    health = health_pb2_grpc.HealthStub(mesh.channel)
    answer = await health.Check(health_pb2.HealthCheckRequest(service="apiparticulier.cnaf.v1.CnafService"))
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(mesh.channel)
    services: set[str] = set()
    async for reply in reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    ):
        services |= {s.name for s in reply.list_services_response.service}
    assert "apiparticulier.cnaf.v1.CnafService" in services
    assert "apiparticulier.mesr.v1.MesrService" in services


async def test_refusals_before_the_limiter_tell_the_rate_without_spending_it(mesh: Mesh) -> None:
    """A call refused for its scope or recipient spends no quota, and still says where the token stands."""
    bearer = mesh.factory.bearer()
    stub = cnaf_pb2_grpc.CnafServiceStub(mesh.channel)
    with pytest.raises(grpc.aio.AioRpcError) as no_scope:  # the token holds no RSA scope: 00100
        await stub.GetRevenuSolidariteActiveByIdentity(
            cnaf_pb2.GetRevenuSolidariteActiveByIdentityRequest(identite=lefebvre()),
            metadata=metadata(bearer),
        )
    with pytest.raises(grpc.aio.AioRpcError) as no_recipient:  # 00203
        await stub.GetQuotientFamilialByIdentity(qf_request(), metadata=metadata(bearer, None))
    refusals = [trailers_of(no_scope.value), trailers_of(no_recipient.value)]
    assert [rich_status(e.value).api_code for e in (no_scope, no_recipient)] == ["00100", "00203"]
    limit = refusals[0]["ratelimit-limit"]
    # Neither refusal spent a call: the bucket of a fresh token is still full.
    assert [(r["ratelimit-limit"], r["ratelimit-remaining"]) for r in refusals] == [(limit, limit)] * 2
    call = stub.GetQuotientFamilialByIdentity(qf_request(), metadata=metadata(bearer))
    await call
    assert dict(await call.trailing_metadata())["ratelimit-remaining"] == str(int(limit) - 1)


async def test_the_bearer_scheme_is_case_insensitive(mesh: Mesh) -> None:
    """`bearer <jwt>` is `Bearer <jwt>` (RFC 9110 §11.1); another scheme is 00101."""
    token = mesh.factory.token()
    stub = cnaf_pb2_grpc.CnafServiceStub(mesh.channel)
    for scheme in ("bearer", "BEARER"):
        answer = await stub.GetQuotientFamilialByIdentity(
            qf_request(), metadata=metadata(f"{scheme} {token}")
        )
        assert answer.data.quotient_familial.valeur == 2550
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.GetQuotientFamilialByIdentity(qf_request(), metadata=metadata(f"Basic {token}"))
    assert rich_status(refused.value).api_code == "00101"
