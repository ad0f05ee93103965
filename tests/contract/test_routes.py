"""The route table read from the descriptors, and masking by scope."""

from __future__ import annotations

from types import ModuleType

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool

from apiparticulier.cnaf.v1 import cnaf_pb2
from apiparticulier.common.v1 import options_pb2
from apiparticulier.mesr.v1 import mesr_pb2
from contract.routes import ContractError, LookupParameter, SubjectField, build_routes, field_options
from gateway.masking import mask
from runtime.providers import PROVIDERS
from tests.contract.contracts import messages_under, provider_responses


def test_every_provider_response_field_carries_exactly_one_masking_option() -> None:
    """Every field of every provider response message (nested too) has scope xor visible_to_every_caller."""
    seen = messages_under(*provider_responses())
    assert seen, "no provider response message found"
    offenders = []
    for message in seen:
        for field in message.fields:
            scope, visible = field_options(field)
            if (scope is not None) == visible:
                offenders.append(f"{message.full_name}.{field.name}")
    assert offenders == []


def test_every_provider_method_is_routed_with_its_scopes() -> None:
    """Each provider method gets a route with its provider, path, api label and method_access scopes."""
    table = build_routes()
    paths = table.by_path()
    route = paths["/apiparticulier.cnaf.v1.CnafService/GetQuotientFamilialByIdentity"]
    assert route.provider == "cnaf"
    assert route.service == "apiparticulier.cnaf.v1.CnafService"
    assert route.api_label == "cnaf.quotient_familial"
    assert route.scopes == {"cnaf_quotient_familial", "cnaf_allocataires", "cnaf_enfants", "cnaf_adresse"}
    assert route.request_class is cnaf_pb2.GetQuotientFamilialByIdentityRequest
    assert route.response_class is cnaf_pb2.GetQuotientFamilialByIdentityResponse
    assert route.plan.scopes == route.scopes
    expected = sum(
        len(s.methods)
        for m in (p.contract() for p in PROVIDERS)
        for s in m.DESCRIPTOR.services_by_name.values()
    )
    assert len(table.routes) == expected
    assert all(r.scopes for r in table.routes), "a provider method without scopes would be refused to all"


def test_routes_carry_what_the_contract_declares() -> None:
    """API label, HTTP paths, subject field and Lookup parameters come from the options, not from names."""
    paths = build_routes().by_path()
    men = paths["/apiparticulier.men.v1.MenService/GetScolariteByIdentity"]
    assert men.api_label == "men.scolarite"
    assert men.http_paths == ("/v4/men/scolarites/identite", "/v3/men/scolarites/identite")
    assert men.subject == SubjectField("identite", options_pb2.SUBJECT_KIND_IDENTITY_PIVOT)
    assert {(p.field, p.parameter) for p in men.lookup_parameters} == {
        ("annee_scolaire", "annee_scolaire"),
        ("code_etablissement", "code_etablissement"),
        ("degre_etablissement", "degre_etablissement"),
        ("codes_bcn_departements", "codes_bcn_departements"),
        ("codes_bcn_regions", "codes_bcn_regions"),
    }
    statut = paths["/apiparticulier.france_travail.v1.FranceTravailService/GetStatutByIdentifiant"]
    assert statut.subject == SubjectField("identifiant", options_pb2.SUBJECT_KIND_FRANCE_TRAVAIL_IDENTIFIANT)
    assert statut.lookup_parameters == (LookupParameter("identifiant", "identifiant_france_travail"),)
    ine = paths["/apiparticulier.cnous.v1.CnousService/GetEtudiantBoursierByIne"]
    assert ine.subject == SubjectField("ine", options_pb2.SUBJECT_KIND_INE)
    v3 = paths["/apiparticulier.cnous.v1.CnousService/GetEtudiantBoursierV3ByIne"]
    assert (v3.api_label, v3.http_paths, v3.deprecated) == (
        "cnous.etudiant_boursier",
        ("/v3/cnous/etudiant_boursier/ine",),
        True,
    )
    assert ine.deprecated
    v5 = paths["/apiparticulier.cnous.v1.CnousService/GetEtudiantBoursierV5ByIne"]
    assert (v5.http_paths, v5.deprecated) == (("/v5/cnous/etudiant_boursier/ine",), False)
    assert "cnous_ine" not in v5.scopes and "cnous_ine" in v5.plan.scopes
    v5_identity = paths["/apiparticulier.cnous.v1.CnousService/GetEtudiantBoursierV5ByIdentity"]
    assert "cnous_ine" in v5_identity.scopes
    assert {(p.field, p.parameter) for p in v5.lookup_parameters} == {("campaign_year", "campaign_year")}


def test_quotient_familial_masking_keeps_only_unlocked_fields() -> None:
    """With cnaf_quotient_familial only, the answer keeps quotient_familial and loses the rest."""
    route = build_routes().by_path()["/apiparticulier.cnaf.v1.CnafService/GetQuotientFamilialByIdentity"]
    response = cnaf_pb2.GetQuotientFamilialByIdentityResponse()
    response.data.quotient_familial.valeur = 2550
    response.data.allocataires.add(nom_naissance="X")
    response.data.enfants.add(nom_naissance="Y")
    response.data.adresse.pays = "FRANCE"
    mask(response, route.plan, frozenset({"cnaf_quotient_familial"}))
    assert response.data.quotient_familial.valeur == 2550
    assert not response.data.allocataires
    assert not response.data.enfants
    assert not response.data.HasField("adresse")


def test_mesr_nested_masking() -> None:
    """Inside each admission, fields are cleared by their own scope; without mesri_admissions, all go."""
    route = build_routes().by_path()["/apiparticulier.mesr.v1.MesrService/GetStatutEtudiantByIne"]

    def answer() -> mesr_pb2.GetStatutEtudiantByIneResponse:
        response = mesr_pb2.GetStatutEtudiantByIneResponse()
        for year in ("2024", "2025"):
            admission = response.data.admissions.add(date_debut=f"{year}-09-01", est_inscrit=True)
            admission.regime_formation.code = "RF1"
            admission.code_cog_insee_commune = "75056"
            admission.etablissement_etudes.uai = "0751717J"
        response.data.identite.nom_naissance = "X"
        return response

    response = answer()
    mask(response, route.plan, frozenset({"mesri_admissions", "mesri_admission_inscrit"}))
    assert len(response.data.admissions) == 2
    for admission in response.data.admissions:
        assert admission.date_debut and admission.est_inscrit
        assert not admission.HasField("regime_formation")
        assert not admission.code_cog_insee_commune
        assert not admission.HasField("etablissement_etudes")
    assert not response.data.HasField("identite")

    response = answer()
    mask(response, route.plan, frozenset({"mesri_identite", "mesri_admission_inscrit"}))
    assert not response.data.admissions
    assert response.data.identite.nom_naissance == "X"

    response = answer()
    before = response.SerializeToString()
    mask(response, route.plan, route.plan.scopes)
    assert response.SerializeToString() == before


def _module_with_unannotated_field(name: str) -> ModuleType:
    """A throwaway provider contract whose method and messages lack options the gateway needs."""
    file = descriptor_pb2.FileDescriptorProto(
        name=f"apiparticulier/{name}/v1/{name}.proto",
        package=f"apiparticulier.{name}.v1",
        syntax="proto3",
        dependency=["apiparticulier/common/v1/options.proto"],
    )
    reply = file.message_type.add(name="FakeResponse")
    ok = reply.field.add(name="ok", number=1, type=8, label=1)
    ok.options.Extensions[options_pb2.visible_to_every_caller] = True
    reply.field.add(name="leak", number=2, type=9, label=1)
    both = reply.field.add(name="both", number=3, type=9, label=1)
    both.options.Extensions[options_pb2.visible_to_every_caller] = True
    both.options.Extensions[options_pb2.scope] = "s"
    request = file.message_type.add(name="FakeRequest")
    # A string subject marked as an identity pivot, and a Lookup parameter that does not exist.
    ine = request.field.add(name="ine", number=1, type=9, label=1)
    ine.options.Extensions[options_pb2.subject] = options_pb2.SUBJECT_KIND_IDENTITY_PIVOT
    year = request.field.add(name="year", number=2, type=5, label=1)
    year.options.Extensions[options_pb2.lookup_parameter] = "no_such_parameter"
    service = file.service.add(name="FakeService")
    service.method.add(
        name="GetFake",
        input_type=f".apiparticulier.{name}.v1.FakeRequest",
        output_type=f".apiparticulier.{name}.v1.FakeResponse",
    )
    # The default pool already holds options.proto; the fake file's name is unique to this test.
    module = ModuleType("fake_pb2")
    module.DESCRIPTOR = descriptor_pool.Default().AddSerializedFile(file.SerializeToString())  # type: ignore[attr-defined]
    return module


def test_start_up_fails_on_a_method_it_cannot_classify() -> None:
    """Every undecided part of a method stops the route table, each named."""
    with pytest.raises(ContractError) as failure:
        build_routes([_module_with_unannotated_field("fake")])
    message = str(failure.value)
    assert "apiparticulier.fake.v1.FakeResponse.leak" in message
    assert "apiparticulier.fake.v1.FakeResponse.both" in message
    assert "FakeResponse.ok" not in message
    assert "/apiparticulier.fake.v1.FakeService/GetFake: api_route" in message
    assert (
        "/apiparticulier.fake.v1.FakeService/GetFake: the request needs exactly one subject field" in message
    )
    assert "FakeRequest.year: no LookupParameters.no_such_parameter" in message
