"""The ``men`` fixture: a stub of a men service on its sandbox, on loopback."""

from apiparticulier.men.v1 import men_pb2_grpc
from services.men.app import MEN
from tests.services.conftest import sandbox_stub_fixture

men = sandbox_stub_fixture(MEN, men_pb2_grpc.MenServiceStub)
