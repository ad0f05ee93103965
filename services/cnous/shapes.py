"""The shapes of the scholarship answer the service derives from the backend's v5 data object.

The real API serves every version and modality from the same Cnous answer; only
the rendering differs. The derived messages keep each field they share with
`cnous_pb2.EtudiantBoursierV5Data` under its number, so those fields carry over
as they are:

- v4 (deprecated, still called): without ``ine``;
- for a FranceConnect user, the object without ``identite``: the citizen signed
  in, so the API never sends their identity back;
- v3 (deprecated, still called): ``est_boursier`` at the top where v4 has the
  ``statut_boursier`` block, v3 saying nothing of a striking off.
"""

from __future__ import annotations

from typing import TypeVar

from google.protobuf.message import Message

from apiparticulier.cnous.v1 import cnous_pb2

_Shape = TypeVar("_Shape", bound=Message)
_V3 = TypeVar("_V3", cnous_pb2.EtudiantBoursierV3Data, cnous_pb2.EtudiantBoursierV3FranceConnectData)


def carried_over(data: cnous_pb2.EtudiantBoursierV5Data, shape: type[_Shape]) -> _Shape:
    """The fields of ``data`` that ``shape`` has, under the same numbers.

    The others are dropped before the bytes change type: a field left in would
    travel on as an unknown field of the answer, past the masking.
    """
    shared: Message = cnous_pb2.EtudiantBoursierV5Data()
    shared.CopyFrom(data)
    for field in shared.DESCRIPTOR.fields:
        if field.name not in shape.DESCRIPTOR.fields_by_name:
            shared.ClearField(field.name)
    return shape.FromString(shared.SerializeToString())


def v3_of(data: cnous_pb2.EtudiantBoursierV5Data, shape: type[_V3]) -> _V3:
    """The v3 data object of ``shape`` from the v5 one: ``est_boursier`` from ``statut_boursier``."""
    v3 = carried_over(data, shape)
    if data.statut_boursier.HasField("est_boursier"):
        v3.est_boursier = data.statut_boursier.est_boursier
    return v3
