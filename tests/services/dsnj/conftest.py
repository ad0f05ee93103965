"""The ``dsnj`` fixture: a stub of a dsnj service on its sandbox, on loopback."""

from apiparticulier.dsnj.v1 import dsnj_pb2_grpc
from services.dsnj.app import DSNJ
from tests.services.conftest import sandbox_stub_fixture

dsnj = sandbox_stub_fixture(DSNJ, dsnj_pb2_grpc.DsnjServiceStub)
