"""The route table read from the descriptors, and masking by scope."""

from __future__ import annotations

from types import ModuleType

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool

from apiparticulier.cnaf.v1 import cnaf_pb2
from apiparticulier.common.v1 import options_pb2
from apiparticulier.mesr.v1 import mesr_pb2
from contract.routes import ContractError, api_name, build_routes, field_options
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
    assert route.api == "cnaf.quotient_familial"
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


@pytest.mark.parametrize(
    ("method", "api"),
    [
        ("GetQuotientFamilialByIdentity", "quotient_familial"),
        ("GetStatutByIdentifiant", "statut"),
        ("GetStatutEtudiantByIne", "statut_etudiant"),
        ("GetEtudiantBoursierByFranceConnect", "etudiant_boursier"),
        ("GetComplementaireSanteSolidaireByIdentity", "complementaire_sante_solidaire"),
    ],
)
def test_api_label(method: str, api: str) -> None:
    """The api label drops Get and By…, in snake case."""
    assert api_name(method) == api


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


def _module_with_unannotated_field() -> ModuleType:
    """A throwaway provider contract whose response has a field without any masking option."""
    file = descriptor_pb2.FileDescriptorProto(
        name="apiparticulier/fake/v1/fake.proto",
        package="apiparticulier.fake.v1",
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
    file.message_type.add(name="FakeRequest")
    service = file.service.add(name="FakeService")
    service.method.add(
        name="GetFake",
        input_type=".apiparticulier.fake.v1.FakeRequest",
        output_type=".apiparticulier.fake.v1.FakeResponse",
    )
    # The default pool already holds options.proto; the fake file's name is unique to this test.
    module = ModuleType("fake_pb2")
    module.DESCRIPTOR = descriptor_pool.Default().AddSerializedFile(file.SerializeToString())  # type: ignore[attr-defined]
    return module


def test_start_up_fails_on_a_field_without_masking_option() -> None:
    """A response field with neither option (or both) stops the route table, naming the field."""
    with pytest.raises(ContractError) as failure:
        build_routes([_module_with_unannotated_field()])
    assert "apiparticulier.fake.v1.FakeResponse.leak" in str(failure.value)
    assert "apiparticulier.fake.v1.FakeResponse.both" in str(failure.value)
    assert "FakeResponse.ok" not in str(failure.value)
