"""The ``cnous`` fixture: a stub of a cnous service on its sandbox, on loopback."""

from apiparticulier.cnous.v1 import cnous_pb2_grpc
from services.cnous.app import CNOUS
from tests.services.conftest import sandbox_stub_fixture

cnous = sandbox_stub_fixture(CNOUS, cnous_pb2_grpc.CnousServiceStub)
