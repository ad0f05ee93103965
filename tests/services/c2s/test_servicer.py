"""The c2s service over gRPC on loopback, on its sandbox population."""

from __future__ import annotations

import contextlib
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from apiparticulier.c2s.v1 import c2s_pb2, c2s_pb2_grpc
from apiparticulier.common.v1 import identity_pb2
from tests.people import lefebvre
from tests.rich_status import rich_status


def pivot(
    name: str,
    firsts: list[str],
    year: int | None,
    month: int | None,
    day: int | None,
    sex: str,
    country: str = "99100",
    **overrides: Any,
) -> identity_pb2.IdentityPivot:
    """An identity pivot; date parts given as None stay unset."""
    fields: dict[str, Any] = {
        "nom_naissance": name,
        "prenoms": firsts,
        "sexe_etat_civil": sex,
        "code_cog_insee_pays_naissance": country,
    }
    for key, value in (
        ("annee_date_naissance", year),
        ("mois_date_naissance", month),
        ("jour_date_naissance", day),
    ):
        if value is not None:
            fields[key] = value
    fields.update(overrides)
    return identity_pb2.IdentityPivot(**fields)


TICKET = "5b0f1c64-3a8e-4c1d-9f3e-2d7b8a6c4e10"
"""A request id of the caller's: a UUID, as the CNAV routes demand."""


def as_v3(data: c2s_pb2.ComplementaireSanteSolidaireData) -> dict[str, Any]:
    """The data object as the v3 JSON renders it: original names, false booleans printed."""
    return json_format.MessageToDict(
        data, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


async def by_identity(
    c2s: c2s_pb2_grpc.C2sServiceAsyncStub, identity: identity_pb2.IdentityPivot
) -> c2s_pb2.ComplementaireSanteSolidaireData:
    """Ask the C2S status of an identity pivot."""
    response = await c2s.GetComplementaireSanteSolidaireByIdentity(
        c2s_pb2.GetComplementaireSanteSolidaireByIdentityRequest(identite=identity)
    )
    return response.data


async def by_france_connect(
    c2s: c2s_pb2_grpc.C2sServiceAsyncStub, identity: identity_pb2.IdentityPivot
) -> c2s_pb2.ComplementaireSanteSolidaireData:
    """Ask the C2S status of a FranceConnect user the gateway resolved to this identity."""
    response = await c2s.GetComplementaireSanteSolidaireByFranceConnect(
        c2s_pb2.GetComplementaireSanteSolidaireByFranceConnectRequest(
            france_connect=identity_pb2.FranceConnectSubject(access_token="opaque", identite_pivot=identity)
        )
    )
    return response.data


ASKERS = pytest.mark.parametrize("ask", [by_identity, by_france_connect], ids=["identity", "france-connect"])


@ASKERS
@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        (
            lefebvre(),
            {"est_beneficiaire": True, "avec_participation": False, "date_debut_droit": "2021-05-01"},
        ),
        (
            pivot("Garnier", ["Sophie", "Amina"], 1975, 5, 19, "F", country="99350"),
            {"est_beneficiaire": True, "avec_participation": True, "date_debut_droit": "2025-11-01"},
        ),
        (
            pivot("Petit", ["Lina"], 2003, None, None, "F", code_cog_insee_commune_naissance="69123"),
            {"est_beneficiaire": True, "avec_participation": False, "date_debut_droit": "2025-09-01"},
        ),
        (
            pivot("Moreau", ["Jean"], 1958, 4, 3, "M", code_cog_insee_commune_naissance="12202"),
            {"est_beneficiaire": False},
        ),
    ],
    ids=["without-participation", "with-participation-born-abroad", "year-only", "not-covered"],
)
async def test_sandbox_persons_get_their_v3_data_object(
    c2s: c2s_pb2_grpc.C2sServiceAsyncStub,
    ask: Any,
    identity: identity_pb2.IdentityPivot,
    expected: dict[str, Any],
) -> None:
    """Each documented person's answer comes back whole, with the v3 JSON field names.

    A person not covered has no participation and no start date: both unset, which
    the v3 JSON renders as null, never as false or an empty string.
    """
    data = await ask(c2s, identity)
    assert as_v3(data) == expected
    if not data.est_beneficiaire:
        assert not data.HasField("avec_participation")
        assert not data.HasField("date_debut_droit")


async def test_names_match_whatever_their_case_and_accents(c2s: c2s_pb2_grpc.C2sServiceAsyncStub) -> None:
    """The sandbox finds a person from names typed in any case, with or without accents."""
    data = await by_identity(c2s, lefebvre(nom_naissance="LEFÈBVRE", prenoms=["alexis"]))
    assert data.est_beneficiaire is True


async def test_partial_birth_date_matches_only_as_registered(c2s: c2s_pb2_grpc.C2sServiceAsyncStub) -> None:
    """The person registered with a birth year only is not found under a full birth date."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await by_identity(c2s, pivot("Petit", ["Lina"], 2003, 5, 1, "F"))
    assert rich_status(caught.value).api_code == "40003"


@ASKERS
@pytest.mark.parametrize(
    ("identity", "code", "api_code", "provider", "retry"),
    [
        (pivot("Inconnu", ["Paul"], 1990, 1, 1, "M"), grpc.StatusCode.NOT_FOUND, "40003", "RNCPS", False),
        (pivot("Zyxwvut", ["Quentin"], 1971, 3, 9, "M"), grpc.StatusCode.NOT_FOUND, "40003", "RNCPS", False),
        (
            pivot("Indisponible", ["Lucie"], 1985, 7, 14, "F"),
            grpc.StatusCode.UNAVAILABLE,
            "37001",
            "CNAV",
            True,
        ),
        (
            pivot("Delai", ["Marc"], 1979, 2, 28, "M"),
            grpc.StatusCode.DEADLINE_EXCEEDED,
            "37002",
            "CNAV",
            True,
        ),
        (pivot("Etrange", ["Claire"], 1992, 10, 5, "F"), grpc.StatusCode.UNKNOWN, "37999", "CNAV", False),
    ],
    ids=["not-found", "outside-the-sandbox", "unavailable", "timeout", "unknown-answer"],
)
async def test_sandbox_error_paths(
    c2s: c2s_pb2_grpc.C2sServiceAsyncStub,
    ask: Any,
    identity: identity_pb2.IdentityPivot,
    code: grpc.StatusCode,
    api_code: str,
    provider: str,
    retry: bool,
) -> None:
    """Each error person yields its status, code and provider, RetryInfo exactly where a retry helps."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ask(c2s, identity)
    status = rich_status(caught.value)
    assert (status.code, status.api_code) == (code, api_code)
    assert status.error_info.metadata["provider"] == provider
    assert (status.retry is not None) == retry
    assert status.localized is not None and status.localized.locale == "fr-FR"
    told = status.message + status.localized.message
    assert identity.nom_naissance not in told and identity.prenoms[0] not in told


async def test_not_found_speaks_as_the_v3_api(c2s: c2s_pb2_grpc.C2sServiceAsyncStub) -> None:
    """The not-found error carries the v3 title and detail of 40003."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await by_identity(c2s, pivot("Inconnu", ["Paul"], 1990, 1, 1, "M"))
    status = rich_status(caught.value)
    assert status.error_info.reason == "NOT_FOUND"
    assert status.localized is not None
    assert status.localized.message == (
        "Dossier allocataire absent RNCPS : Le dossier allocataire n'a pas été trouvé auprès du RNCPS."
    )


@pytest.mark.parametrize(
    ("overrides", "rules"),
    [
        ({"nom_naissance": ""}, [("nomNaissance", "00420")]),
        ({"nom_naissance": "L3FEBVRE"}, [("nomNaissance", "00420")]),
        ({"nom_usage": "\x07Dupont"}, [("nomUsage", "00426")]),
        ({"prenoms": ["Alexis", ""]}, [("prenoms", "00367")]),
        ({"sexe_etat_civil": "X"}, [("sexeEtatCivil", "00427")]),
        ({"code_cog_insee_pays_naissance": ""}, [("codeCogInseePaysNaissance", "00400")]),
        ({"code_cog_insee_pays_naissance": "10100"}, [("codeCogInseePaysNaissance", "00400")]),
        ({"code_cog_insee_commune_naissance": "8480"}, [("codeCogInseeCommuneNaissance", "00365")]),
        ({"annee_date_naissance": 1899}, [("anneeDateNaissance", "00363")]),
        ({"mois_date_naissance": 2, "jour_date_naissance": 30}, [("anneeDateNaissance", "00363")]),
        (
            {"nom_naissance": "", "sexe_etat_civil": "Z", "code_cog_insee_pays_naissance": ""},
            [("sexeEtatCivil", "00427"), ("codeCogInseePaysNaissance", "00400"), ("nomNaissance", "00420")],
        ),
        (
            {"sexe_etat_civil": "Z", "code_cog_insee_commune_naissance": "2O480"},
            [("codeCogInseeCommuneNaissance", "00365")],
        ),
    ],
)
@pytest.mark.parametrize(
    ("ask", "prefix"),
    [(by_identity, "identite"), (by_france_connect, "franceConnect.identitePivot")],
    ids=["identity", "france-connect"],
)
async def test_invalid_identities_are_refused_rule_by_rule(
    c2s: c2s_pb2_grpc.C2sServiceAsyncStub,
    ask: Any,
    prefix: str,
    overrides: dict[str, Any],
    rules: list[tuple[str, str]],
) -> None:
    """Each broken CNAV rule is one violation with its code, in the chain's order; values are not echoed."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ask(c2s, lefebvre(**overrides))
    status = rich_status(caught.value)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT
    assert status.api_code == rules[0][1]
    assert "provider" not in status.error_info.metadata
    assert status.broken_rules == [(f"{prefix}.{field}", code) for field, code in rules]
    assert status.localized is not None
    told = " ".join(
        [status.message, status.localized.message]
        + [v.description for v in status.bad_request.field_violations]  # type: ignore[union-attr]
    )
    for echoed in ("Lefebvre", "Alexis", "Gérôme", "Dupont", "8480", "10100"):
        assert echoed not in told


async def test_what_the_real_api_takes_is_taken(c2s: c2s_pb2_grpc.C2sServiceAsyncStub) -> None:
    """No sex, no first names, a commune code with its name, a typographic apostrophe in a name.

    The real CNAV rules take them: the call reaches the sandbox, whatever it answers.
    """
    for identity in (
        lefebvre(sexe_etat_civil=""),
        lefebvre(prenoms=[]),
        lefebvre(nom_commune_naissance="Charleville-Mézières", code_cog_insee_departement_naissance="08"),
        lefebvre(nom_usage="D\u2019ARTAGNAN"),
    ):
        call = c2s.GetComplementaireSanteSolidaireByIdentity(
            c2s_pb2.GetComplementaireSanteSolidaireByIdentityRequest(identite=identity)
        )
        with contextlib.suppress(grpc.aio.AioRpcError):
            await call
        assert await call.code() != grpc.StatusCode.INVALID_ARGUMENT


async def test_france_connect_needs_the_identity_resolved_by_the_gateway(
    c2s: c2s_pb2_grpc.C2sServiceAsyncStub,
) -> None:
    """A FranceConnect subject the gateway did not resolve is refused before any lookup."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await c2s.GetComplementaireSanteSolidaireByFranceConnect(
            c2s_pb2.GetComplementaireSanteSolidaireByFranceConnectRequest(
                france_connect=identity_pb2.FranceConnectSubject(access_token="opaque")
            )
        )
    status = rich_status(caught.value)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT
    assert status.violated_fields == {"franceConnect.identitePivot"}


async def test_request_id_is_echoed(c2s: c2s_pb2_grpc.C2sServiceAsyncStub) -> None:
    """The caller's x-request-id comes back in the trailers, on success and on refusal alike."""
    for identity in (lefebvre(), pivot("Inconnu", ["Paul"], 1990, 1, 1, "M")):
        call = c2s.GetComplementaireSanteSolidaireByIdentity(
            c2s_pb2.GetComplementaireSanteSolidaireByIdentityRequest(identite=identity),
            metadata=(("x-request-id", TICKET),),
        )
        with contextlib.suppress(grpc.aio.AioRpcError):
            await call
        assert dict(await call.trailing_metadata())["x-request-id"] == TICKET
