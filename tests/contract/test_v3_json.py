"""The v3 JSON renderer, on a throwaway contract and on the provider contracts' presence rules."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, field_mask_pb2, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from apiparticulier.ants.v1 import ants_pb2
from apiparticulier.c2s.v1 import c2s_pb2
from contract.v3_json import (
    DATA_FIELD,
    META_FIELD,
    WITHHELD_FIELD,
    data_object,
    meta_object,
    render,
    withheld_of,
)
from tests.contract.contracts import messages_under, provider_responses

_OPTIONAL = FieldDescriptor.LABEL_OPTIONAL
_REPEATED = FieldDescriptor.LABEL_REPEATED
_MESSAGE = FieldDescriptor.TYPE_MESSAGE
_ENUM = FieldDescriptor.TYPE_ENUM
FIELD_MASK = field_mask_pb2.FieldMask.DESCRIPTOR.full_name


def _optional(message: descriptor_pb2.DescriptorProto, name: str, number: int, kind: int) -> None:
    """A proto3 ``optional`` field: its own synthetic oneof, declared after the real fields' ones."""
    field = message.field.add(name=name, number=number, type=kind, label=_OPTIONAL, proto3_optional=True)
    field.oneof_index = len(message.oneof_decl)
    message.oneof_decl.add(name=f"_{name}")


def _sample_file() -> descriptor_pb2.FileDescriptorProto:
    """A throwaway contract holding one field of every shape the renderer meets, and an enum."""
    file = descriptor_pb2.FileDescriptorProto(
        name="tests/v3_json_sample.proto",
        package="tests.v3json",
        syntax="proto3",
        dependency=["google/protobuf/field_mask.proto"],
    )
    item = file.message_type.add(name="Item")
    _optional(item, "on", 1, FieldDescriptor.TYPE_BOOL)
    _optional(item, "name", 2, FieldDescriptor.TYPE_STRING)
    sample = file.message_type.add(name="Sample")
    sample.field.add(name="items", number=5, type=_MESSAGE, type_name=".tests.v3json.Item", label=_REPEATED)
    sample.field.add(name="item", number=6, type=_MESSAGE, type_name=".tests.v3json.Item", label=_OPTIONAL)
    sample.field.add(name="tags", number=7, type=FieldDescriptor.TYPE_STRING, label=_REPEATED)
    sample.field.add(name="implicit", number=8, type=FieldDescriptor.TYPE_INT32, label=_OPTIONAL)
    _optional(sample, "flag", 1, FieldDescriptor.TYPE_BOOL)
    _optional(sample, "big", 2, FieldDescriptor.TYPE_INT64)
    _optional(sample, "amount", 3, FieldDescriptor.TYPE_DOUBLE)
    _optional(sample, "text", 4, FieldDescriptor.TYPE_STRING)
    response = file.message_type.add(name="SampleResponse")
    response.field.add(
        name=DATA_FIELD, number=1, type=_MESSAGE, type_name=".tests.v3json.Sample", label=_OPTIONAL
    )
    response.field.add(
        name=WITHHELD_FIELD, number=2, type=_MESSAGE, type_name=".google.protobuf.FieldMask", label=_OPTIONAL
    )
    file.enum_type.add(name="Colour").value.add(name="COLOUR_UNSPECIFIED", number=0)
    palette = file.message_type.add(name="Palette")
    palette.field.add(
        name="colour", number=1, type=FieldDescriptor.TYPE_ENUM, type_name=".tests.v3json.Colour"
    )
    return file


def _message_class(name: str) -> type[Message]:
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName("tests/v3_json_sample.proto")
    except KeyError:
        pool.AddSerializedFile(_sample_file().SerializeToString())
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tests.v3json.{name}"))


SampleResponse = _message_class("SampleResponse")
Palette = _message_class("Palette")


def sample(**data: Any) -> Any:
    """A sample response whose data holds ``data``."""
    return SampleResponse(data=data)  # type: ignore[call-arg]  # a class built from a descriptor at run time


def test_set_values_keep_false_zero_and_empty_text() -> None:
    """A set field renders its value, even false, 0, 0.0 or ""; int64 stays a JSON integer."""
    response = sample(flag=False, big=2**53 + 1, amount=0.0, text="", implicit=0)
    data = data_object(response)
    assert {name: data[name] for name in ("flag", "big", "amount", "text", "implicit")} == {
        "flag": False,
        "big": 2**53 + 1,
        "amount": 0.0,
        "text": "",
        "implicit": 0,
    }
    assert type(data["big"]) is int and type(data["amount"]) is float
    assert '"big": 9007199254740993' in json.dumps(data)


def test_unset_fields_are_null_and_lists_are_empty() -> None:
    """With nothing set, every field with presence is null, every list [] (none withheld)."""
    data = data_object(sample())
    assert data == {
        "items": [],
        "item": None,
        "tags": [],
        "implicit": 0,
        "flag": None,
        "big": None,
        "amount": None,
        "text": None,
    }


def test_nested_messages_render_recursively() -> None:
    """Messages, alone or in lists, follow the same rules."""
    data = data_object(sample(items=[{"on": False}, {"name": "B"}], item={"name": "A"}, tags=["x"]))
    assert data["items"] == [{"on": False, "name": None}, {"on": None, "name": "B"}]
    assert data["item"] == {"on": None, "name": "A"}
    assert data["tags"] == ["x"]


def test_withheld_fields_are_absent() -> None:
    """A withheld field is absent, a list's field from every element; a withheld empty list is absent too."""
    response = sample(items=[{"on": True, "name": "A"}, {"on": False, "name": "B"}], text="kept")
    response.withheld.paths.extend(["flag", "items.on", "item", "tags"])
    data = data_object(response)
    assert "flag" not in data and "item" not in data and "tags" not in data
    assert data["items"] == [{"name": "A"}, {"name": "B"}]
    assert data["text"] == "kept" and data["big"] is None
    assert withheld_of(response) == ["flag", "items.on", "item", "tags"]


def test_a_type_without_v3_rendering_is_refused() -> None:
    """An enum has no v3 JSON: rendering names the field rather than guessing."""
    with pytest.raises(TypeError, match=r"tests\.v3json\.Palette\.colour"):
        render(Palette())


def test_the_c2s_answer_of_a_person_not_covered() -> None:
    """est_beneficiaire false with both other fields null, as the v3 API sends it."""
    response = c2s_pb2.GetComplementaireSanteSolidaireByIdentityResponse()
    response.data.est_beneficiaire = False
    assert data_object(response) == {
        "est_beneficiaire": False,
        "avec_participation": None,
        "date_debut_droit": None,
    }


def _data_type(response: Descriptor) -> Descriptor:
    data_type = response.fields_by_name[DATA_FIELD].message_type
    assert data_type is not None
    return data_type


def test_every_provider_response_is_data_and_withheld() -> None:
    """Each provider response holds its data object at 1, the withheld mask at 2, at most its meta at 3."""
    for response in provider_responses():
        fields = {
            (field.name, field.number, field.message_type.full_name if field.message_type else None)
            for field in response.fields
        }
        meta = response.fields_by_name.get(META_FIELD)
        expected = {(DATA_FIELD, 1, _data_type(response).full_name), (WITHHELD_FIELD, 2, FIELD_MASK)}
        if meta is not None:
            assert meta.message_type is not None
            expected.add((META_FIELD, 3, meta.message_type.full_name))
        assert fields == expected


def test_meta_is_rendered_where_an_api_fills_it() -> None:
    """ANTS's identity check renders as its v3 meta object; an API without meta has ``{}``."""
    extrait = ants_pb2.GetExtraitImmatriculationVehiculeByFranceConnectResponse()
    extrait.meta.identity_matching.family_name = 1.0
    extrait.meta.identity_matching.overall_match = False
    assert meta_object(extrait) == {
        "identity_matching": {
            "family_name": 1.0,
            "given_name": None,
            "birth_date": None,
            "overall_match": False,
        }
    }
    assert meta_object(c2s_pb2.GetComplementaireSanteSolidaireByIdentityResponse()) == {}


def test_every_data_field_has_explicit_presence() -> None:
    """Every field under a provider response's data is a list or has presence: set and null differ."""
    seen = messages_under(
        *(
            field.message_type
            for response in provider_responses()
            for field in response.fields
            if field.name in (DATA_FIELD, META_FIELD) and field.message_type is not None
        )
    )
    implicit = [
        field.full_name
        for message in seen
        for field in message.fields
        if not field.is_repeated and not field.has_presence
    ]
    assert seen and implicit == []
