"""The ``cnaf`` fixture: a stub of a cnaf service on its sandbox, on loopback."""

from apiparticulier.cnaf.v1 import cnaf_pb2_grpc
from services.cnaf.app import CNAF
from tests.services.conftest import sandbox_stub_fixture

cnaf = sandbox_stub_fixture(CNAF, cnaf_pb2_grpc.CnafServiceStub)
