"""The ``mesr`` fixture: a stub of a mesr service on its sandbox, on loopback."""

from apiparticulier.mesr.v1 import mesr_pb2_grpc
from services.mesr.app import MESR
from tests.services.conftest import sandbox_stub_fixture

mesr = sandbox_stub_fixture(MESR, mesr_pb2_grpc.MesrServiceStub)
