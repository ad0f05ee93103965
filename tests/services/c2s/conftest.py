"""The ``c2s`` fixture: a stub of a c2s service on its sandbox, on loopback."""

from apiparticulier.c2s.v1 import c2s_pb2_grpc
from services.c2s.app import C2S
from tests.services.conftest import sandbox_stub_fixture

c2s = sandbox_stub_fixture(C2S, c2s_pb2_grpc.C2sServiceStub)
