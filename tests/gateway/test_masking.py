"""Masking withholds what the scopes do not unlock and names it in the response's ``withheld``."""

from __future__ import annotations

from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from apiparticulier.cnaf.v1 import cnaf_pb2
from apiparticulier.mesr.v1 import mesr_pb2
from contract.routes import Route, build_routes
from contract.v3_json import data_object, withheld_of
from gateway.masking import mask

ROUTES = build_routes().by_path()
Answer = TypeVar("Answer", bound=Message)


def answer(response_class: type[Answer], data: dict[str, Any]) -> Answer:
    """A provider response holding the v3 data object ``data``."""
    return json_format.ParseDict({"data": data}, response_class())


def route(service: str, method: str) -> Route:
    return ROUTES[f"/apiparticulier.{service}/{method}"]


RSA = route("cnaf.v1.CnafService", "GetRevenuSolidariteActiveByIdentity")
QUOTIENT_FAMILIAL = route("cnaf.v1.CnafService", "GetQuotientFamilialByIdentity")
MESR = route("mesr.v1.MesrService", "GetStatutEtudiantByIne")


def test_a_withheld_boolean_is_unset_and_named() -> None:
    """Without revenu_solidarite_active, est_beneficiaire reads neither false nor null: it is withheld."""
    response = answer(
        cnaf_pb2.GetRevenuSolidariteActiveByIdentityResponse,
        {"est_beneficiaire": True, "avec_majoration": False, "date_debut_droit": "2021-04-01"},
    )
    mask(response, RSA.plan, frozenset({"revenu_solidarite_active_majoration"}))
    assert not response.data.HasField("est_beneficiaire")
    assert withheld_of(response) == ["est_beneficiaire", "date_debut_droit"]
    assert data_object(response) == {"avec_majoration": False}


def test_a_field_the_provider_left_null_is_withheld_all_the_same() -> None:
    """What is withheld depends on the scopes only: a null the token may not see is withheld, not null."""
    response = answer(cnaf_pb2.GetRevenuSolidariteActiveByIdentityResponse, {"est_beneficiaire": False})
    mask(response, RSA.plan, frozenset({"revenu_solidarite_active"}))
    assert withheld_of(response) == ["avec_majoration"]
    assert data_object(response) == {"est_beneficiaire": False, "date_debut_droit": None}


def test_a_withheld_list_is_not_an_empty_list() -> None:
    """Without cnaf_enfants the children are withheld: absent, not "no children"."""
    response = answer(
        cnaf_pb2.GetQuotientFamilialByIdentityResponse,
        {"enfants": [{"nom_naissance": "DUBOIS"}], "quotient_familial": {"valeur": 2550}},
    )
    mask(response, QUOTIENT_FAMILIAL.plan, frozenset({"cnaf_quotient_familial", "cnaf_allocataires"}))
    assert withheld_of(response) == ["enfants", "adresse"]
    data = data_object(response)
    assert "enfants" not in data and data["allocataires"] == []


def test_a_field_inside_a_list_is_named_once_for_every_element() -> None:
    """admissions.est_inscrit stands for the field in each admission, however many there are (none too)."""
    for count in (0, 2):
        response = answer(
            mesr_pb2.GetStatutEtudiantByIneResponse,
            {"admissions": [{"date_debut": "2026-09-01", "est_inscrit": False}] * count},
        )
        scopes = MESR.plan.scopes - {"mesri_admission_inscrit"}
        mask(response, MESR.plan, scopes)
        assert withheld_of(response) == ["admissions.est_inscrit"]
        assert all(not admission.HasField("est_inscrit") for admission in response.data.admissions)
        assert [sorted(a) for a in data_object(response)["admissions"]] == [
            ["code_cog_insee_commune", "date_debut", "date_fin", "etablissement_etudes", "regime_formation"]
        ] * count


def test_a_withheld_parent_covers_its_fields() -> None:
    """Without mesri_admissions, only admissions is named, not the fields of each admission."""
    response = answer(mesr_pb2.GetStatutEtudiantByIneResponse, {"admissions": [{"est_inscrit": True}]})
    mask(response, MESR.plan, frozenset({"mesri_identite"}))
    assert withheld_of(response) == ["admissions"]


def test_every_scope_withholds_nothing_and_sends_no_mask() -> None:
    """Holding every scope changes no byte: no field is cleared and no empty mask is added."""
    response = answer(
        mesr_pb2.GetStatutEtudiantByIneResponse,
        {"admissions": [{"est_inscrit": False}], "identite": {"prenom": "X"}},
    )
    before = response.SerializeToString()
    mask(response, MESR.plan, MESR.plan.scopes)
    assert response.SerializeToString() == before
    assert not response.HasField("withheld")


def test_the_gateway_alone_says_what_is_withheld() -> None:
    """Paths already in withheld when the gateway masks are replaced by its own."""
    response = answer(cnaf_pb2.GetRevenuSolidariteActiveByIdentityResponse, {"est_beneficiaire": True})
    response.withheld.paths.append("est_beneficiaire")
    mask(response, RSA.plan, frozenset({"revenu_solidarite_active"}))
    assert withheld_of(response) == ["avec_majoration"]
    assert response.data.est_beneficiaire is True
