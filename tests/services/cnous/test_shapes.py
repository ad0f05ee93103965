"""The answer shapes derived from the v5 data object: same numbers, nothing carried unseen."""

from __future__ import annotations

import pytest
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

from apiparticulier.cnous.v1 import cnous_pb2
from services.cnous.shapes import carried_over, v3_of

V5 = cnous_pb2.EtudiantBoursierV5Data
DERIVED = [
    cnous_pb2.EtudiantBoursierV5FranceConnectData,
    cnous_pb2.EtudiantBoursierData,
    cnous_pb2.EtudiantBoursierFranceConnectData,
    cnous_pb2.EtudiantBoursierV3Data,
    cnous_pb2.EtudiantBoursierV3FranceConnectData,
]


def full() -> cnous_pb2.EtudiantBoursierV5Data:
    """A v5 data object with every field set."""
    data = V5(email="a@b.example", ine="2406123457A")
    data.statut_boursier.est_boursier = False
    data.statut_boursier.est_radie = True
    data.statut_boursier.date_radiation = "2026-01-05"
    data.periode_versement_bourse.duree = 0
    data.etablissement_etudes.nom_commune = "RENNES"
    data.echelon_bourse.echelon = "3"
    data.identite.nom = "SECRET"
    return data


@pytest.mark.parametrize("shape", DERIVED, ids=lambda shape: shape.DESCRIPTOR.name)
def test_shared_fields_keep_their_v5_number_and_type(shape: type[Message]) -> None:
    """Each field of a derived shape is the v5 field of its name (number, type), but v3's est_boursier."""
    v5: Descriptor = V5.DESCRIPTOR
    for field in shape.DESCRIPTOR.fields:
        if field.name == "est_boursier":
            assert field.number not in v5.fields_by_number
            continue
        same = v5.fields_by_name[field.name]
        assert (field.number, field.type, field.message_type) == (same.number, same.type, same.message_type)


def test_v3_takes_est_boursier_and_drops_the_rest_of_the_status() -> None:
    """False is kept; the striking off and, for FranceConnect, the identity are not even unknown fields."""
    v3 = v3_of(full(), cnous_pb2.EtudiantBoursierV3Data)
    assert v3.HasField("est_boursier") and v3.est_boursier is False
    assert v3.identite.nom == "SECRET" and v3.periode_versement_bourse.HasField("duree")
    fc = v3_of(full(), cnous_pb2.EtudiantBoursierV3FranceConnectData)
    encoded = fc.SerializeToString()
    assert b"SECRET" not in encoded and b"2026-01-05" not in encoded
    assert not UnknownFieldSet(fc) and fc.email == "a@b.example"
    assert b"2406123457A" not in encoded


def test_v3_without_status_leaves_est_boursier_null() -> None:
    """A v5 object with no statut_boursier gives an unset est_boursier (null), not false."""
    data = full()
    data.ClearField("statut_boursier")
    assert not v3_of(data, cnous_pb2.EtudiantBoursierV3Data).HasField("est_boursier")


def test_france_connect_v4_drops_identite_only() -> None:
    """The v4 FranceConnect shape keeps statut_boursier whole and loses identite, bytes included."""
    fc = carried_over(full(), cnous_pb2.EtudiantBoursierFranceConnectData)
    assert fc.statut_boursier.date_radiation == "2026-01-05"
    assert b"SECRET" not in fc.SerializeToString() and not UnknownFieldSet(fc)


def test_v4_drops_the_ine_bytes_included() -> None:
    """The v4 shapes never carry the INE, not even as an unknown field; v5 FranceConnect keeps it."""
    for shape in (cnous_pb2.EtudiantBoursierData, cnous_pb2.EtudiantBoursierFranceConnectData):
        v4 = carried_over(full(), shape)
        assert b"2406123457A" not in v4.SerializeToString() and not UnknownFieldSet(v4)
    v5_fc = carried_over(full(), cnous_pb2.EtudiantBoursierV5FranceConnectData)
    assert v5_fc.ine == "2406123457A" and b"SECRET" not in v5_fc.SerializeToString()
