"""The france_travail service over gRPC on loopback, on its sandbox population."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.protobuf import json_format

from apiparticulier.france_travail.v1 import france_travail_pb2, france_travail_pb2_grpc
from tests.rich_status import rich_status

if TYPE_CHECKING:
    # The async stub type exists in the generated stubs only, not at run time.
    Stub = france_travail_pb2_grpc.FranceTravailServiceAsyncStub


def as_v3(data: Any) -> dict[str, Any]:
    """A data object as the v3 JSON renders it: original names, zero amounts printed."""
    return json_format.MessageToDict(
        data, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


async def statut(france_travail: Stub, identifiant: str) -> france_travail_pb2.StatutData:
    """Ask the job-seeker status of an identifiant."""
    response = await france_travail.GetStatutByIdentifiant(
        france_travail_pb2.GetStatutByIdentifiantRequest(identifiant=identifiant)
    )
    return response.data


async def indemnites(france_travail: Stub, identifiant: str) -> france_travail_pb2.IndemnitesData:
    """Ask the payments of an identifiant."""
    response = await france_travail.GetIndemnitesByIdentifiant(
        france_travail_pb2.GetIndemnitesByIdentifiantRequest(identifiant=identifiant)
    )
    return response.data


BOTH_METHODS = pytest.mark.parametrize("ask", [statut, indemnites], ids=["statut", "indemnites"])


async def test_status_is_the_whole_v3_data_object(france_travail: Stub) -> None:
    """The category 1 person's status comes back whole, with the v3 JSON field names."""
    data = await statut(france_travail, "claire.fontaine75")
    assert as_v3(data) == {
        "identifiant": "claire.fontaine75",
        "identite": {
            "civilite": "MME",
            "nom_naissance": "FONTAINE",
            "nom_usage": "ROCHE",
            "prenom": "CLAIRE",
            "sexe": "Féminin",
            "date_naissance": "1988-03-14",
        },
        "contact": {
            "telephone": "0612345678",
            "telephone2": "0145678901",
            "email": "claire.fontaine75@example.org",
        },
        "adresse": {
            "code_postal": "75011",
            "code_cog_insee_commune": "75111",
            "localite": "75011 PARIS",
            "ligne_voie": "8 RUE DES GLYCINES",
            "ligne_complement_destinataire": "APPARTEMENT 12",
            "ligne_nom": "MME ROCHE CLAIRE",
        },
        "inscription": {
            "date_debut": "2025-02-03",
            "categorie": {
                "code": 1,
                "libelle": "PERSONNE SANS EMPLOI DISPONIBLE DUREE INDETERMINEE PLEIN TPS",
            },
            "code_certification_cnav": "VC",
        },
    }


@pytest.mark.parametrize(
    ("identifiant", "code", "libelle"),
    [
        ("claire.fontaine75", 1, "PERSONNE SANS EMPLOI DISPONIBLE DUREE INDETERMINEE PLEIN TPS"),
        ("hugo.bernier", 2, "PERSONNE SANS EMPLOI DISPONIBLE DUREE INDETERMINEE PARTIEL"),
        ("ines.marchal", 3, "PERSONNE SANS EMPLOI DISPONIBLE DUREE DETERMINEE OU SAISON"),
        ("theo.lambert", 4, "PERSONNE SANS EMPLOI NON DISPONIBLE IMMEDIATEMENT"),
        ("nadia.perrin", 5, "PERSONNE POURVUE D'UN EMPLOI A LA RECHERCHE D'UN AUTRE"),
    ],
    ids=["A", "B", "C", "D", "E"],
)
async def test_every_category_has_its_exact_label(
    france_travail: Stub, identifiant: str, code: int, libelle: str
) -> None:
    """Categories 1 to 5 (A to E) each have a person, labelled exactly as the v3 spec lists them."""
    data = await statut(france_travail, identifiant)
    assert as_v3(data)["inscription"]["categorie"] == {"code": code, "libelle": libelle}
    assert data.identifiant == identifiant


@pytest.mark.parametrize(
    ("identifiant", "nom_usage", "date_fin", "certification", "contact"),
    [
        ("claire.fontaine75", "ROCHE", None, "VC", {"telephone", "telephone2", "email"}),
        ("hugo.bernier", None, None, "IC", {"telephone"}),
        ("ines.marchal", None, None, None, {"telephone", "email"}),
        ("theo.lambert", None, "2025-12-31", "PC", {"telephone", "telephone2"}),
        ("nadia.perrin", "MOREL", None, "VC", {"telephone", "telephone2", "email"}),
    ],
)
async def test_nullable_fields_are_set_only_when_known(
    france_travail: Stub,
    identifiant: str,
    nom_usage: str | None,
    date_fin: str | None,
    certification: str | None,
    contact: set[str],
) -> None:
    """Usage name, end of registration, certification and optional contacts are unset (null) when absent."""
    data = await statut(france_travail, identifiant)
    v3 = as_v3(data)
    assert v3["identite"].get("nom_usage") == nom_usage
    assert data.identite.HasField("nom_usage") == (nom_usage is not None)
    assert v3["inscription"].get("date_fin") == date_fin
    assert data.inscription.HasField("date_fin") == (date_fin is not None)
    assert v3["inscription"].get("code_certification_cnav") == certification
    assert set(v3["contact"]) == contact


async def test_address_complements_come_through(france_travail: Stub) -> None:
    """Every optional address line is carried when France Travail has it."""
    data = await statut(france_travail, "nadia.perrin")
    assert as_v3(data)["adresse"] == {
        "code_postal": "31000",
        "code_cog_insee_commune": "31555",
        "localite": "31000 TOULOUSE",
        "ligne_voie": "5 IMPASSE DES CYPRES",
        "ligne_complement_destinataire": "CHEZ M. MOREL",
        "ligne_complement_adresse": "RESIDENCE LES PINS BATIMENT B",
        "ligne_complement_distribution": "BP 42",
        "ligne_nom": "MME MOREL NADIA",
    }


async def test_several_payments_most_recent_first(france_travail: Stub) -> None:
    """A person paid several times gets every payment, most recent first, in v3 JSON."""
    data = await indemnites(france_travail, "claire.fontaine75")
    assert as_v3(data) == {
        "identifiant": "claire.fontaine75",
        "paiements": [
            {
                "date_versement": "2026-11-05",
                "montant_total": 1180.5,
                "montant_allocations": 1180.5,
                "montant_aides": 0.0,
                "montant_autres": 0.0,
            },
            {
                "date_versement": "2026-10-05",
                "montant_total": 1321.75,
                "montant_allocations": 1180.5,
                "montant_aides": 150.0,
                "montant_autres": 20.0,
            },
            {
                "date_versement": "2026-09-04",
                "montant_total": 1142.3,
                "montant_allocations": 1142.3,
                "montant_aides": 0.0,
                "montant_autres": 0.0,
            },
        ],
    }


@pytest.mark.parametrize(
    ("identifiant", "dates"),
    [
        ("ines.marchal", ["2026-10-05"]),
        ("theo.lambert", ["2025-12-05", "2025-11-05"]),
        ("nadia.perrin", ["2026-10-05", "2026-06-05"]),
    ],
)
async def test_payments_of_each_paid_person(france_travail: Stub, identifiant: str, dates: list[str]) -> None:
    """Each paid person's payments are dated, ordered and never total more than their parts."""
    data = await indemnites(france_travail, identifiant)
    assert data.identifiant == identifiant
    assert [p.date_versement for p in data.paiements] == dates
    for paiement in data.paiements:
        parts = paiement.montant_allocations + paiement.montant_aides + paiement.montant_autres
        assert 0 < paiement.montant_total <= parts


async def test_person_never_paid_is_not_found(france_travail: Stub) -> None:
    """A registered person with no payment has a status but no payments: 24003, as upstream."""
    assert (await statut(france_travail, "hugo.bernier")).inscription.categorie.code == 2
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await indemnites(france_travail, "hugo.bernier")
    status = rich_status(caught.value)
    assert (status.code, status.api_code) == (grpc.StatusCode.NOT_FOUND, "24003")
    assert status.error_info.metadata["provider"] == "France Travail"


@BOTH_METHODS
@pytest.mark.parametrize(
    ("identifiant", "code", "api_code", "retry"),
    [
        ("paul.inconnu", grpc.StatusCode.NOT_FOUND, "24003", False),
        ("quelqu.un.d.autre", grpc.StatusCode.NOT_FOUND, "24003", False),
        ("lucie.indisponible", grpc.StatusCode.UNAVAILABLE, "24001", True),
        ("marc.delai", grpc.StatusCode.DEADLINE_EXCEEDED, "24002", True),
        ("claire.etrange", grpc.StatusCode.UNKNOWN, "24999", False),
    ],
    ids=["not-found", "outside-the-sandbox", "unavailable", "timeout", "unknown-answer"],
)
async def test_sandbox_error_paths(
    france_travail: Stub, ask: Any, identifiant: str, code: grpc.StatusCode, api_code: str, retry: bool
) -> None:
    """Each error identifiant yields its status and code from France Travail, RetryInfo where it helps."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ask(france_travail, identifiant)
    status = rich_status(caught.value)
    assert (status.code, status.api_code) == (code, api_code)
    assert status.error_info.metadata["provider"] == "France Travail"
    assert (status.retry is not None) == retry
    assert status.localized is not None and status.localized.locale == "fr-FR"
    assert identifiant not in status.message + status.localized.message


async def test_not_found_speaks_as_the_v3_api(france_travail: Stub) -> None:
    """The not-found error carries the v3 title and detail of 24003."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await statut(france_travail, "paul.inconnu")
    status = rich_status(caught.value)
    assert status.localized is not None
    assert status.localized.message == (
        "Entité non trouvée : Aucune situation France Travail n'a pu être trouvée "
        "avec les critères de recherche fournis."
    )


@BOTH_METHODS
@pytest.mark.parametrize(
    ("identifiant", "detail"),
    [
        ("", "L'identifiant est manquant"),
        ("   ", "L'identifiant est manquant"),
        ("\t\n", "L'identifiant est manquant"),
    ],
    ids=["empty", "blank", "whitespace"],
)
async def test_bad_identifiants_are_refused(
    france_travail: Stub, ask: Any, identifiant: str, detail: str
) -> None:
    """A missing identifiant is INVALID_ARGUMENT 00380 on `identifiant`; the real API checks no format."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ask(france_travail, identifiant)
    status = rich_status(caught.value)
    assert (status.code, status.api_code) == (grpc.StatusCode.INVALID_ARGUMENT, "00380")
    assert "provider" not in status.error_info.metadata
    assert status.violated_fields == {"identifiant"}
    assert len(status.bad_request.field_violations) == 1  # type: ignore[union-attr]
    assert status.localized is not None
    assert status.localized.message == f"Entité non traitable : {detail}"
    told = " ".join(
        [status.message, status.localized.message]
        + [v.description for v in status.bad_request.field_violations]  # type: ignore[union-attr]
    )
    assert "secret" not in told and "xxxx" not in told


@BOTH_METHODS
async def test_longest_acceptable_identifiant_reaches_the_backend(france_travail: Stub, ask: Any) -> None:
    """An identifiant of exactly 100 characters is valid: it is looked up, and not found."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ask(france_travail, "y" * 100)
    assert rich_status(caught.value).api_code == "24003"


async def test_request_id_is_echoed(france_travail: Stub) -> None:
    """The caller's x-request-id comes back in the trailers, on success and on refusal alike."""
    for identifiant in ("claire.fontaine75", ""):
        call = france_travail.GetStatutByIdentifiant(
            france_travail_pb2.GetStatutByIdentifiantRequest(identifiant=identifiant),
            metadata=(("x-request-id", "3c1e2a4b-5d6f-4a7b-8c9d-0e1f2a3b4c5d"),),
        )
        with contextlib.suppress(grpc.aio.AioRpcError):
            await call
        assert dict(await call.trailing_metadata())["x-request-id"] == "3c1e2a4b-5d6f-4a7b-8c9d-0e1f2a3b4c5d"
